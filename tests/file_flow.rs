//! File-tracked environments (seeds 2 and 4) through the real binary, on the
//! local backend and on the github backend against the fake GitHub.

mod support;

use support::fake_github::FakeGitHub;
use support::{Jobs, git, git_raw, refs, rev, run, scratch};

fn p(d: &std::path::Path) -> String {
    d.display().to_string()
}

#[test]
fn local_stage_promote_rollback_report() {
    let (_t, dir) = scratch("make_file_repo.sh");
    let path = p(&dir);
    let first = rev(&dir, "main");
    // dev is direct: a commit on the checked-out main, work tree kept clean.
    let s = run(
        &["stage", "--path", &path, "--service", "payments", "--version", "1.2.0"],
        &[],
    );
    s.assert_ok();
    assert_eq!(s.out("changed"), "true");
    assert_eq!(s.out("environment"), "dev");
    assert_eq!(s.out("previous-version"), "1.0.0");
    let c = rev(&dir, "main");
    assert_eq!(s.out("commit"), c);
    assert_eq!(git(&dir, &["status", "--porcelain"]), "");
    assert_eq!(
        git(&dir, &["diff", "--name-only", &first, &c]),
        "overlays/dev/payments/values.yaml"
    );
    assert!(
        git_raw(&dir, &["show", "HEAD:overlays/dev/payments/values.yaml"])
            .contains("  tag: \"1.2.0\" # set by gitops-flow\n")
    );
    assert!(git(&dir, &["log", "-1", "--format=%B"]).contains("Gitops-Flow-Environment: dev"));
    assert_eq!(
        run(
            &["stage", "--path", &path, "--service", "payments", "--version", "1.2.0"],
            &[]
        )
        .assert_ok()
        .out("changed"),
        "false"
    );

    // dev -> qa: a pull request branch with exactly the qa file changed.
    let pr = run(&["promote", "--path", &path, "--service", "payments"], &[]);
    pr.assert_ok();
    assert_eq!(pr.out("environment"), "qa");
    assert_eq!(pr.out("branch"), "gitops-flow/qa/payments");
    assert_eq!(pr.out("version"), "1.2.0");
    let b = rev(&dir, "gitops-flow/qa/payments");
    assert_eq!(
        git(&dir, &["diff", "--name-only", "main", &b]),
        "overlays/qa/payments/values.yaml"
    );
    assert_eq!(rev(&dir, "main"), c, "main untouched by a pull-request promotion");

    // Other location kinds: Flux marker and kustomize images (CRLF kept).
    run(
        &["stage", "--path", &path, "--service", "webui", "--version", "2.1.0"],
        &[],
    )
    .assert_ok();
    assert!(
        git_raw(&dir, &["show", "HEAD:webshop/dev/webui.yaml"])
            .contains("image: ghcr.io/acme/webui:2.1.0 # {\"$imagepolicy\": \"webshop:webui\"}\n")
    );
    run(
        &["stage", "--path", &path, "--service", "api", "--version", "3.1.0"],
        &[],
    )
    .assert_ok();
    assert_eq!(
        git_raw(&dir, &["show", "HEAD:k8s/dev/kustomization.yaml"]),
        "resources:\r\n  - deployment.yaml\r\nimages:\r\n  - name: ghcr.io/acme/api\r\n    newTag: 3.1.0\r\n"
    );

    // rollback dev: the previous different value from the file's history.
    let rb = run(
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
    rb.assert_ok();
    assert_eq!(rb.out("version"), "1.0.0");
    assert_eq!(rb.out("previous-version"), "1.2.0");
    assert!(git_raw(&dir, &["show", "HEAD:overlays/dev/payments/values.yaml"]).contains("tag: \"1.0.0\""));
    assert!(git(&dir, &["log", "-1", "--format=%B"]).contains("Gitops-Flow-Command: rollback"));
    // Last changed by a rollback: nothing to do (as in tag mode).
    assert_eq!(
        run(
            &[
                "rollback",
                "--path",
                &path,
                "--service",
                "payments",
                "--environment",
                "dev"
            ],
            &[]
        )
        .assert_ok()
        .out("changed"),
        "false"
    );
    // An explicit version rolls forward.
    let fwd = run(
        &[
            "rollback",
            "--path",
            &path,
            "--service",
            "payments",
            "--environment",
            "dev",
            "--version",
            "1.2.0",
        ],
        &[],
    );
    assert_eq!(fwd.assert_ok().out("changed"), "true");

    let r = run(&["report", "--path", &path], &[]);
    r.assert_ok();
    let j: serde_json::Value = serde_json::from_str(r.out("report")).unwrap();
    assert_eq!(j["payments"]["dev"]["version"], "1.2.0");
    assert_eq!(j["payments"]["prod"]["version"], "1.0.0");
    assert_eq!(j["webui"]["dev"]["version"], "2.1.0");
    assert_eq!(j["api"]["dev"]["version"], "3.1.0");
    assert_eq!(git(&dir, &["status", "--porcelain"]), "");
}

#[test]
fn broken_or_ambiguous_manifests_fail_with_exit_2_and_nothing_written() {
    let (_t, dir) = scratch("make_file_repo.sh");
    let path = p(&dir);
    std::fs::write(
        dir.join("overlays/dev/payments/values.yaml"),
        "image:\n  tag: *missing\n",
    )
    .unwrap();
    git(&dir, &["commit", "-qam", "break"]);
    let before = refs(&dir);
    let r = run(
        &["stage", "--path", &path, "--service", "payments", "--version", "1.3.0"],
        &[],
    );
    r.assert_input_error("overlays/dev/payments/values.yaml");
    assert_eq!(refs(&dir), before);
    std::fs::write(
        dir.join("overlays/dev/payments/values.yaml"),
        "image:\n  tag: |\n    1.0.0\n",
    )
    .unwrap();
    git(&dir, &["commit", "-qam", "block"]);
    let before = refs(&dir);
    run(
        &["stage", "--path", &path, "--service", "payments", "--version", "1.3.0"],
        &[],
    )
    .assert_input_error("block scalar");
    assert_eq!(refs(&dir), before);
    std::fs::write(
        dir.join("overlays/dev/payments/values.yaml"),
        "image:\n  repository: x\n",
    )
    .unwrap();
    git(&dir, &["commit", "-qam", "no tag"]);
    run(
        &["stage", "--path", &path, "--service", "payments", "--version", "1.3.0"],
        &[],
    )
    .assert_input_error("key `image.tag` not found");
    // Uncommitted changes in the file a direct commit would touch.
    std::fs::write(dir.join("webshop/dev/webui.yaml"), "dirty: true\n").unwrap();
    let before = refs(&dir);
    run(
        &["stage", "--path", &path, "--service", "webui", "--version", "2.2.0"],
        &[],
    )
    .assert_input_error("uncommitted changes");
    assert_eq!(refs(&dir), before);
    assert_eq!(
        std::fs::read_to_string(dir.join("webshop/dev/webui.yaml")).unwrap(),
        "dirty: true\n"
    );
}

#[test]
fn branch_tracked_environments() {
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
    // A change lands on staging.
    git(&dir, &["checkout", "-q", "staging"]);
    std::fs::write(
        dir.join("overlays/dev/payments/values.yaml"),
        "image:\n  tag: \"1.5.0\"\n",
    )
    .unwrap();
    git(&dir, &["commit", "-qam", "payments 1.5.0 on staging"]);
    git(&dir, &["checkout", "-q", "main"]);
    let staging = rev(&dir, "staging");
    let prod_before = rev(&dir, "production");
    // production is direct: a fast-forward.
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
    r.assert_ok();
    assert_eq!(r.out("changed"), "true");
    assert_eq!(rev(&dir, "production"), staging);
    assert_eq!(
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
                "production"
            ],
            &[]
        )
        .assert_ok()
        .out("changed"),
        "false"
    );
    let j: serde_json::Value =
        serde_json::from_str(run(&["report", "--path", &path], &[]).assert_ok().out("report")).unwrap();
    assert_eq!(j["payments"]["production"]["version"], "1.5.0");
    // rollback: a commit on production restoring the tree before the promotion.
    let rb = run(
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
    rb.assert_ok();
    let head = rev(&dir, "production");
    assert_eq!(git(&dir, &["rev-parse", &format!("{head}^")]), staging);
    assert_eq!(
        git(&dir, &["rev-parse", &format!("{head}^{{tree}}")]),
        git(&dir, &["rev-parse", &format!("{prod_before}^{{tree}}")])
    );
}

#[test]
fn github_file_flow_with_the_promotion_chain_and_a_concurrent_writer() {
    let (_seed, dir) = scratch("make_file_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let jobs = Jobs::new(&fake);
    let job = |inputs: &[(&str, &str)], extra: &[(&str, &str)]| jobs.run(inputs, extra);
    // dev: a direct, verified commit on main; a concurrent push lands first.
    let main0 = fake.rev("main").unwrap();
    fake.delay_writes("createCommitOnBranch", 300);
    let bare = fake.bare.clone();
    let racer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(120));
        let sh = |args: &[&str]| {
            let o = std::process::Command::new("git")
                .args(args)
                .current_dir(&bare)
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        };
        let tree = sh(&["rev-parse", "main^{tree}"]);
        let c = sh(&[
            "-c",
            "user.name=other",
            "-c",
            "user.email=o@example.com",
            "commit-tree",
            &tree,
            "-p",
            "main",
            "-m",
            "someone else",
        ]);
        sh(&["update-ref", "refs/heads/main", &c]);
        c
    });
    let s = job(
        &[("command", "stage"), ("service", "payments"), ("version", "1.2.0")],
        &[],
    );
    let other = racer.join().unwrap();
    s.assert_ok();
    let head = fake.rev("main").unwrap();
    assert_eq!(
        fake.git(&["rev-parse", &format!("{head}^")]),
        other,
        "re-applied on top of the other commit, not over it"
    );
    assert_ne!(other, main0);
    assert!(fake.is_verified(&head));
    assert!(
        fake.git(&["show", &format!("{head}:overlays/dev/payments/values.yaml")])
            .contains("tag: \"1.2.0\"")
    );

    // dev -> qa: pull request with auto-merge (qa says auto-merge: true).
    let pr = job(&[("command", "promote"), ("service", "payments")], &[]);
    pr.assert_ok();
    assert_eq!(pr.out("pull-request-number"), "1");
    let pulls = fake.pulls();
    assert!(pulls[0].auto_merge);
    assert!(pulls[0].body.contains("\"environment\":\"qa\""));
    // The qa pull request merges; the push to main continues the chain to prod.
    let merged = fake.merge_pull(1);
    fake.clear_log();
    let chain = job(
        &[("command", "promote")],
        &[("GITHUB_EVENT_NAME", "push"), ("GITHUB_SHA", &merged)],
    );
    chain.assert_ok();
    let chain_requests = fake.requests().len();
    assert_eq!(chain.out("environment"), "prod");
    assert_eq!(chain.out("service"), "payments");
    let pulls = fake.pulls();
    assert_eq!(pulls.len(), 2);
    assert_eq!(pulls[1].head, "gitops-flow/prod/payments");
    assert!(!pulls[1].auto_merge, "prod does not auto-merge");
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.path.ends_with(&format!("/commits/{merged}/pulls")))
    );
    // On the same push, `status` gates the environment the merged pull request deployed.
    fake.add_status(&merged, "kustomization/payments-qa/0c9c2e41", "success");
    let st = job(
        &[("command", "status"), ("timeout", "2")],
        &[("GITHUB_EVENT_NAME", "push"), ("GITHUB_SHA", &merged)],
    );
    st.assert_ok();
    assert_eq!(st.out("environment"), "qa");
    assert_eq!(st.out("revision"), merged);
    // Merging prod ends the chain.
    let merged2 = fake.merge_pull(2);
    let end = job(
        &[("command", "promote")],
        &[("GITHUB_EVENT_NAME", "push"), ("GITHUB_SHA", &merged2)],
    );
    end.assert_ok();
    assert_eq!(end.out("changed"), "false");
    assert!(end.stdout.contains("last environment"), "{}", end.stdout);
    assert_eq!(fake.pulls().len(), 2);

    // rollback prod from the file's history (API reads: the checkout is shallow).
    let rb = job(
        &[
            ("command", "rollback"),
            ("service", "payments"),
            ("environment", "prod"),
        ],
        &[],
    );
    rb.assert_ok();
    assert_eq!(rb.out("version"), "1.0.0");
    let head = fake.rev("main").unwrap();
    assert!(
        fake.git(&["show", &format!("{head}:overlays/prod/payments/values.yaml")])
            .contains("tag: \"1.0.0\"")
    );
    let report = job(&[("command", "report")], &[]);
    let j: serde_json::Value = serde_json::from_str(report.assert_ok().out("report")).unwrap();
    assert_eq!(j["payments"]["qa"]["version"], "1.2.0");
    assert_eq!(j["payments"]["prod"]["version"], "1.0.0");
    println!("chain promote requests: {chain_requests}");
    assert!(chain_requests <= 8, "chain: {chain_requests}");
    fake.assert_clean();
}

#[test]
fn rollback_via_pull_request_and_report_warnings() {
    let (_t, dir) = scratch("make_file_repo.sh");
    let path = p(&dir);
    run(
        &["stage", "--path", &path, "--service", "payments", "--version", "1.2.0"],
        &[],
    )
    .assert_ok();
    let main = rev(&dir, "main");
    let r = run(
        &[
            "rollback",
            "--path",
            &path,
            "--service",
            "payments",
            "--environment",
            "dev",
            "--rollback-via",
            "pull-request",
        ],
        &[],
    );
    r.assert_ok();
    assert_eq!(r.out("branch"), "gitops-flow/rollback/dev/payments");
    assert_eq!(rev(&dir, "main"), main, "a pull request, not a commit on main");
    assert!(
        git_raw(
            &dir,
            &[
                "show",
                "gitops-flow/rollback/dev/payments:overlays/dev/payments/values.yaml"
            ]
        )
        .contains("tag: \"1.0.0\"")
    );
    // A broken cell is shown as such with a warning; the report does not fail.
    std::fs::write(dir.join("webshop/qa/webui.yaml"), "spec: [broken\n").unwrap();
    git(&dir, &["commit", "-qam", "break qa webui"]);
    let rep = run(&["report", "--path", &path], &[]);
    rep.assert_ok();
    assert!(rep.stdout.contains("::warning::webui in qa"), "{}", rep.stdout);
    let j: serde_json::Value = serde_json::from_str(rep.out("report")).unwrap();
    assert!(j["webui"]["qa"]["error"].as_str().unwrap().contains("not valid YAML"));
    assert_eq!(j["webui"]["dev"]["version"], "2.0.0");
}

#[test]
fn github_branch_tracked_environments() {
    let (_seed, dir) = scratch("make_file_repo.sh");
    std::fs::write(
        dir.join("gitops-flow.yaml"),
        "environments:\n  - { name: staging, track: branch, branch: staging }\n  - { name: qa, track: branch, branch: qa }\n  - { name: production, track: branch, branch: production, direct: true }\nservices:\n  payments:\n    version:\n      - file: overlays/dev/payments/values.yaml\n        key: image.tag\n",
    )
    .unwrap();
    git(&dir, &["commit", "-qam", "branch config"]);
    for b in ["staging", "qa", "production"] {
        git(&dir, &["branch", b]);
    }
    git(&dir, &["checkout", "-q", "staging"]);
    std::fs::write(
        dir.join("overlays/dev/payments/values.yaml"),
        "image:\n  tag: \"1.5.0\"\n",
    )
    .unwrap();
    git(&dir, &["commit", "-qam", "payments 1.5.0 on staging"]);
    let fake = FakeGitHub::start(&dir);
    let jobs = Jobs::new(&fake);
    let staging = fake.rev("staging").unwrap();
    // qa is not direct: a pull request from staging into qa.
    let r = jobs.run(
        &[
            ("command", "promote"),
            ("service", "payments"),
            ("from", "staging"),
            ("to", "qa"),
        ],
        &[],
    );
    r.assert_ok();
    let pulls = fake.pulls();
    assert_eq!((pulls[0].head.as_str(), pulls[0].base.as_str()), ("staging", "qa"));
    // production is direct: fast-forward through updateRefs.
    let r = jobs.run(
        &[
            ("command", "promote"),
            ("service", "payments"),
            ("from", "staging"),
            ("to", "production"),
        ],
        &[],
    );
    r.assert_ok();
    assert_eq!(fake.rev("production").unwrap(), staging);
    // rollback: a verified commit on production restoring the tree before the promotion.
    let r = jobs.run(
        &[
            ("command", "rollback"),
            ("service", "payments"),
            ("environment", "production"),
        ],
        &[],
    );
    r.assert_ok();
    let head = fake.rev("production").unwrap();
    assert!(fake.is_verified(&head));
    assert_eq!(fake.git(&["rev-parse", &format!("{head}^")]), staging);
    assert!(
        fake.git(&["show", &format!("{head}:overlays/dev/payments/values.yaml")])
            .contains("tag: \"1.0.0\"")
    );
    fake.assert_clean();
}

/// Issue 8, row 1, through the binary: a key that two HelmReleases of one file hold is
/// refused (exit 2, the file and line named, nothing written) until `document:` picks one.
#[test]
fn a_location_in_several_documents_is_refused_until_one_is_selected() {
    let (_t, dir) = scratch("make_file_repo.sh");
    let path = p(&dir);
    let releases = "kind: HelmRelease\nmetadata:\n  name: payments\nspec:\n  values:\n    image:\n      tag: 1.0.0\n---\nkind: HelmRelease\nmetadata:\n  name: orders\nspec:\n  values:\n    image:\n      tag: 7.0.0\n";
    let config = |document: &str| {
        format!(
            "environments:\n  - {{ name: dev, track: file, direct: true }}\n  - {{ name: prod, track: file }}\nservices:\n  payments:\n    version:\n      - file: releases/{{env}}.yaml\n        key: spec.values.image.tag\n{document}  orders:\n    version:\n      - file: releases/{{env}}.yaml\n        key: spec.values.image.tag\n        document: {{kind: HelmRelease, name: \"{{service}}\"}}\n"
        )
    };
    std::fs::create_dir_all(dir.join("releases")).unwrap();
    for env in ["dev", "prod"] {
        std::fs::write(dir.join(format!("releases/{env}.yaml")), releases).unwrap();
    }
    std::fs::write(dir.join("gitops-flow.yaml"), config("")).unwrap();
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
            "releases",
        ],
    );
    let before = rev(&dir, "main");
    let r = run(
        &["stage", "--path", &path, "--service", "payments", "--version", "1.1.0"],
        &[],
    );
    r.assert_input_error("file=releases/dev.yaml,line=8");
    assert!(
        r.stdout
            .contains("HelmRelease/payments (line 1), HelmRelease/orders (line 8)"),
        "{}",
        r.stdout
    );
    assert_eq!(rev(&dir, "main"), before, "nothing written");
    assert_eq!(git(&dir, &["status", "--porcelain"]), "");

    // `orders` selects its document (`name: "{service}"`): only its value moves.
    let r = run(
        &["stage", "--path", &path, "--service", "orders", "--version", "7.1.0"],
        &[],
    );
    r.assert_ok();
    assert_eq!(r.out("previous-version"), "7.0.0");
    assert_eq!(
        git_raw(&dir, &["show", "HEAD:releases/dev.yaml"]),
        releases.replace("tag: 7.0.0", "tag: 7.1.0")
    );
}
