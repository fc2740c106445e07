//! Never a panic, always within `timeout` (issue 9, section 4), through the real
//! binary: odd tokens, huge numbers, a crash, hostile Argo CD servers.

mod support;

use support::fake_argocd::{ARGO_TOKEN, AppState, FakeArgo};
use support::fake_github::{FakeGitHub, TOKEN};
use support::{Jobs, event_file, rev, run, scratch};

const FAST: [(&str, &str); 1] = [("GITOPS_FLOW_POLL_MS", "20")];

fn error_line(r: &support::Run) -> &str {
    r.stdout
        .lines()
        .find(|l| l.starts_with("::error"))
        .unwrap_or_else(|| panic!("no ::error:: in\n{}\n{}", r.stdout, r.stderr))
}

#[test]
fn a_token_with_a_trailing_newline_works() {
    let (_seed, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let j = Jobs::new(&fake);
    let token = format!("{TOKEN}\n");
    let r = j.run(&[("command", "report")], &[("INPUT_TOKEN", &token)]);
    r.assert_ok();
    assert!(r.stdout.contains(&format!("::add-mask::{TOKEN}\n")), "{}", r.stdout);
    // With spaces and CRLF around it as well.
    let token = format!("  {TOKEN} \r\n");
    j.run(&[("command", "report")], &[("INPUT_TOKEN", &token)]).assert_ok();
    fake.assert_clean();
}

#[test]
fn a_token_with_a_control_character_is_bad_input_and_never_shown() {
    let (_seed, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let j = Jobs::new(&fake);
    for (token, at) in [
        (format!("ghs_fa\nke{TOKEN}"), 7),
        (format!("ghs_\u{1}{TOKEN}"), 5),
        (format!("{TOKEN}\u{7f}"), TOKEN.len() + 1),
    ] {
        let r = j.run(&[("command", "report")], &[("INPUT_TOKEN", &token)]);
        assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
        assert_eq!(
            error_line(&r),
            format!(
                "::error::input `token` contains a control character (at character {at}); set the secret again without line breaks or other control characters"
            )
        );
        // Everything but the masking lines themselves.
        let logged: Vec<&str> = r.stdout.lines().filter(|l| !l.starts_with("::add-mask::")).collect();
        let all = format!("{}{}{:?}", logged.join("\n"), r.stderr, r.outputs);
        assert!(!all.contains(TOKEN), "the token leaked:\n{all}");
        assert_eq!(r.out("changed"), "false");
        // Each piece between control characters is masked on its own too.
        for piece in token.split(char::is_control).filter(|p| p.len() >= 4) {
            assert!(
                r.stdout.contains(&format!("::add-mask::{piece}\n")),
                "{piece} not masked:\n{}",
                r.stdout
            );
        }
    }
    assert!(fake.requests().is_empty(), "nothing was sent: {:?}", fake.requests());
}

#[test]
fn a_huge_timeout_is_bad_input() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let path = dir.display().to_string();
    for t in ["18446744073709551615", "18446744073709551615h", "400000m"] {
        let r = run(
            &["status", "--path", &path, "--service", "payments", "--timeout", t],
            &[],
        );
        assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
        assert_eq!(
            error_line(&r),
            format!("::error::input `timeout` is `{t}`, longer than 24 hours; give at most `24h` (`86400`)")
        );
    }
}

#[test]
fn a_crash_is_an_error_line_and_exit_1_without_the_token() {
    let r = run(
        &["report"],
        &[
            ("GITOPS_FLOW_TEST_CRASH", "1"),
            ("INPUT_TOKEN", "ghs_secret_value_42\n"),
        ],
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let err = error_line(&r);
    assert!(
        err.starts_with("::error::gitops-flow crashed (internal error at src/lib.rs:"),
        "{err}"
    );
    assert!(
        err.ends_with(": test crash requested with token ***); nothing after this point ran, re-run the job and report this at the project's issue tracker"),
        "{err}"
    );
    assert!(!r.stdout.contains("ghs_secret"), "{}", r.stdout);
}

#[test]
fn a_version_sent_as_a_json_number_keeps_its_digits() {
    let (t, dir) = scratch("make_tag_repo.sh");
    let path = dir.display().to_string();
    // `1.10` as a number: serde_json's `Value` would read 1.1.
    let ev = t.path().join("event.json");
    std::fs::write(
        &ev,
        r#"{"action": "stage", "client_payload": {"service": "payments", "version": 1.10}}"#,
    )
    .unwrap();
    let evs = ev.display().to_string();
    let r = run(
        &["stage", "--path", &path],
        &[
            ("GITHUB_EVENT_NAME", "repository_dispatch"),
            ("GITHUB_EVENT_PATH", &evs),
        ],
    );
    r.assert_ok();
    assert_eq!(r.out("version"), "1.10");
    let branch = r.out("branch").to_string();
    let chart = support::git(&dir, &["show", &format!("{branch}:charts/payments/Chart.yaml")]);
    assert!(
        chart.contains("appVersion: \"1.10\"")
            || chart.contains("appVersion: 1.10\n")
            || chart.ends_with("appVersion: 1.10"),
        "{chart}"
    );
    // A real payload fixture patched the same way.
    let ev = event_file(
        t.path(),
        "repository_dispatch.on-demand-test.0.json",
        serde_json::json!({"client_payload": {"service": "orders"}}),
    );
    let text = std::fs::read_to_string(&ev)
        .unwrap()
        .replace("\"service\":\"orders\"", "\"service\":\"orders\",\"version\":2.50");
    std::fs::write(&ev, text).unwrap();
    let evs = ev.display().to_string();
    let r = run(
        &["stage", "--path", &path],
        &[
            ("GITHUB_EVENT_NAME", "repository_dispatch"),
            ("GITHUB_EVENT_PATH", &evs),
        ],
    );
    r.assert_ok();
    assert_eq!(r.out("version"), "2.50");
}

#[test]
fn a_multibyte_argo_revision_is_reported_not_a_panic() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let path = dir.display().to_string();
    let _ = rev(&dir, "payments-staging");
    let argo = FakeArgo::start(
        "payments-staging",
        vec![AppState::new("Healthy", "Synced", "abcdeféghij", "Succeeded")],
    );
    let r = run(
        &[
            "status",
            "--path",
            &path,
            "--service",
            "payments",
            "--environment",
            "staging",
            "--argocd-server",
            &argo.url,
            "--argocd-token",
            ARGO_TOKEN,
            "--timeout",
            "1",
        ],
        &FAST,
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        error_line(&r)
            .contains("last seen: health=Healthy sync=Synced revision=abcdefé operation=Succeeded (expected "),
        "{}",
        r.stdout
    );
}

/// A server that accepts connections and never answers.
fn silent_server() -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
            if held.len() > 50 {
                break;
            }
        }
    });
    (url, h)
}

#[test]
fn a_silent_argo_server_is_bounded_by_the_timeout() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let path = dir.display().to_string();
    let (url, _h) = silent_server();
    let start = std::time::Instant::now();
    let r = run(
        &[
            "status",
            "--path",
            &path,
            "--service",
            "payments",
            "--environment",
            "staging",
            "--argocd-server",
            &url,
            "--argocd-token",
            ARGO_TOKEN,
            "--timeout",
            "3",
        ],
        &FAST,
    );
    let took = start.elapsed();
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(took < std::time::Duration::from_secs(6), "took {took:?}");
    assert_eq!(
        error_line(&r),
        "::error::payments is not healthy in `staging`: timed out after 3s; last seen: Argo CD did not answer before the timeout; pass `rollback-on-failure: true` to roll back automatically"
    );
}

// ---------------------------------------------------------------- configuration (section 6)

#[test]
fn the_minimal_config_is_accepted() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let path = dir.display().to_string();
    for text in [
        "environments: [{name: staging}, {name: production}]\n",
        "environments:\n  - { name: staging, tag: \"{service}-{env}\" }\n  - { name: production, tag: \"{service}-{env}\" }\n",
    ] {
        std::fs::write(dir.join("gitops-flow.yaml"), text).unwrap();
        let r = run(&["promote", "--path", &path, "--service", "payments", "--dry-run"], &[]);
        r.assert_ok();
        assert_eq!(r.out("tag"), "payments-production");
    }
}

#[test]
fn a_config_linked_from_outside_the_checkout_is_not_read() {
    let (t, dir) = scratch("make_tag_repo.sh");
    let path = dir.display().to_string();
    let outside = t.path().join("elsewhere.yaml");
    std::fs::write(&outside, "aws_secret_access_key: hunter2\n").unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("gitops-flow.yaml")).unwrap();
    let r = run(&["report", "--path", &path], &[]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        error_line(&r),
        format!(
            "::error::config gitops-flow.yaml is a symbolic link that leads outside the checkout at {path}; gitops-flow does not read it. Put the file itself in the repository (a link to a file inside the repository is fine)"
        )
    );
    let all = format!("{}{}{}", r.stdout, r.stderr, r.summary);
    assert!(!all.contains("aws_secret") && !all.contains("hunter2"), "{all}");
    // Through a linked folder, too.
    std::fs::remove_file(dir.join("gitops-flow.yaml")).unwrap();
    std::fs::create_dir(t.path().join("cfg")).unwrap();
    std::fs::write(t.path().join("cfg/c.yaml"), "aws_secret_access_key: hunter2\n").unwrap();
    std::os::unix::fs::symlink(t.path().join("cfg"), dir.join("cfg")).unwrap();
    let r = run(&["report", "--path", &path, "--config", "cfg/c.yaml"], &[]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        error_line(&r).contains("is a symbolic link that leads outside the checkout"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("aws_secret"), "{}", r.stdout);
    // A link inside the repository is read.
    std::fs::write(
        dir.join("real.yaml"),
        "environments: [{name: staging}, {name: production}]\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("real.yaml", dir.join("gitops-flow.yaml")).unwrap();
    run(&["report", "--path", &path], &[]).assert_ok();
}

// ---------------------------------------------------------------- messages (section 7)

/// No line of stdout is a workflow command the test did not expect.
fn assert_no_injected_command(r: &support::Run) {
    for l in r.stdout.lines() {
        assert!(
            !["::warning::injected", "::set-output", "::error::injected"]
                .iter()
                .any(|c| l.trim_start().starts_with(c)),
            "injected workflow command:\n{}",
            r.stdout
        );
    }
}

#[test]
fn check_names_cannot_inject_workflow_commands() {
    let (_seed, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let j = Jobs::new(&fake);
    let head = fake.rev("payments-staging").unwrap();
    fake.add_status(
        &head,
        "kustomization/payments-staging/x\n::warning::injected",
        "pending",
    );
    let r = j.run(
        &[
            ("command", "status"),
            ("service", "payments"),
            ("environment", "staging"),
            ("timeout", "1"),
        ],
        &FAST,
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_no_injected_command(&r);
    assert!(
        r.stdout
            .contains("waiting: on 9000fa0: pending: kustomization/payments-staging/x%0A::warning::injected\n"),
        "{}",
        r.stdout
    );
}

#[test]
fn argo_messages_cannot_inject_workflow_commands() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let path = dir.display().to_string();
    let head = rev(&dir, "payments-staging");
    let argo = FakeArgo::start(
        "payments-staging",
        vec![AppState::new(
            "Progressing\n::set-output name=changed::true",
            "Synced\r\n::error::injected",
            &head,
            "",
        )],
    );
    let r = run(
        &[
            "status",
            "--path",
            &path,
            "--service",
            "payments",
            "--environment",
            "staging",
            "--argocd-server",
            &argo.url,
            "--argocd-token",
            ARGO_TOKEN,
            "--timeout",
            "1",
        ],
        &FAST,
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_no_injected_command(&r);
    assert!(
        r.stdout.contains("waiting: health=Progressing%0A::set-output name=changed::true sync=Synced%0D%0A::error::injected revision=9000fa0\n"),
        "{}",
        r.stdout
    );
}

fn local(args: &[&str], dir: &std::path::Path) -> support::Run {
    let path = dir.display().to_string();
    let mut a = args.to_vec();
    a.extend(["--path", &path]);
    run(&a, &[])
}

#[test]
fn a_stale_ref_lock_names_the_file_and_what_to_do() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let head = rev(&dir, "main");
    let before = support::refs(&dir);
    let lock = dir.join(".git/refs/tags/payments-staging.lock");
    std::fs::write(&lock, "").unwrap();
    let r = local(&["deploy", "--service", "payments", "--revision", &head], &dir);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(
        error_line(&r),
        format!(
            "::error::cannot update refs: {} exists, so git thinks another git process is writing them; nothing was written. If no git command is running (a crashed one leaves the file behind), delete it and re-run",
            lock.display()
        )
    );
    assert_eq!(support::refs(&dir), before);
    std::fs::remove_file(&lock).unwrap();
    local(&["deploy", "--service", "payments", "--revision", &head], &dir).assert_ok();
}

#[test]
fn a_tag_at_a_tree_or_blob_is_bad_input() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let before = support::refs(&dir);
    let tree = support::git(&dir, &["rev-parse", "main^{tree}"]);
    let blob = support::git(&dir, &["rev-parse", "main:charts/payments/Chart.yaml"]);
    for (id, kind) in [(tree, "tree"), (blob, "blob")] {
        support::git(&dir, &["update-ref", "refs/tags/payments-production", &id]);
        let r = local(&["promote", "--service", "payments"], &dir);
        assert_eq!(r.code, 2, "{}", r.stdout);
        assert_eq!(
            error_line(&r),
            format!(
                "::error::`payments-production` points at a {kind} ({}), not a commit, so gitops-flow cannot tell what it deploys; point it at a commit: `git tag -f payments-production <commit>` then push it, or delete it with `git tag -d payments-production`",
                &id[..7]
            )
        );
    }
    support::git(
        &dir,
        &[
            "update-ref",
            "refs/tags/payments-production",
            &before["refs/tags/payments-production"],
        ],
    );
    assert_eq!(support::refs(&dir), before);
}

#[test]
fn a_corrupt_loose_ref_is_named() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let file = dir.join(".git/refs/tags/payments-staging");
    std::fs::write(&file, "garbage\n").unwrap();
    let r = local(&["promote", "--service", "payments"], &dir);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert_eq!(
        error_line(&r),
        format!(
            "::error::ref `refs/tags/payments-staging` is corrupt: {} does not hold an object id; nothing was written. Delete that file and set the ref again (`git fetch --tags --force`, or re-run the command that made it)",
            file.display()
        )
    );
}

#[test]
fn an_ambiguous_abbreviated_sha_says_so() {
    let (t, dir) = scratch("make_tag_repo.sh");
    // Enough blobs that two share their first four hex digits.
    let blobs = t.path().join("blobs");
    std::fs::create_dir(&blobs).unwrap();
    let mut paths = Vec::new();
    for i in 0..3000 {
        let p = blobs.join(i.to_string());
        std::fs::write(&p, format!("x{i}\n")).unwrap();
        paths.push(p.display().to_string());
    }
    let mut args = vec!["hash-object", "-w"];
    args.extend(paths.iter().map(String::as_str));
    let ids = support::git(&dir, &args);
    let mut prefixes: Vec<&str> = ids.lines().map(|l| &l[..4]).collect();
    prefixes.sort();
    let dup = prefixes.windows(2).find(|w| w[0] == w[1]).expect("a shared prefix")[0];
    let r = local(&["deploy", "--service", "payments", "--revision", dup], &dir);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert_eq!(
        error_line(&r),
        format!(
            "::error::revision `{dup}` is ambiguous: several objects in the repository start with it; give more digits of the commit id"
        )
    );
}

#[test]
fn a_revision_missing_from_a_shallow_clone_says_to_fetch_it() {
    let (t, dir) = scratch("make_tag_repo.sh");
    let old = rev(&dir, "main");
    support::git(&dir, &["commit", "-q", "--allow-empty", "-m", "one"]);
    support::git(&dir, &["commit", "-q", "--allow-empty", "-m", "two"]);
    let clone = t.path().join("shallow");
    support::git(
        t.path(),
        &[
            "clone",
            "-q",
            "--depth",
            "1",
            &format!("file://{}", dir.display()),
            &clone.display().to_string(),
        ],
    );
    let r = local(&["deploy", "--service", "payments", "--revision", &old], &clone);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert_eq!(
        error_line(&r),
        format!(
            "::error::revision `{old}` not found in {}, which is a shallow clone: it may be in the history that was not fetched; fetch it (`git fetch --unshallow`, or `fetch-depth: 0` in actions/checkout) or give a commit id that exists",
            clone.display()
        )
    );
}

/// Issue 10: `RUNNER_DEBUG=1` (a re-run with debug logging) turns on gitops-flow's
/// debug logs, not those of every crate underneath (hyper, rustls, gix).
#[test]
fn runner_debug_logs_only_gitops_flow() {
    let (_seed, dir) = support::scratch("make_tag_repo.sh");
    let fake = support::fake_github::FakeGitHub::start(&dir);
    let jobs = support::Jobs::new(&fake);
    let r = jobs.run(&[("command", "report")], &[("RUNNER_DEBUG", "1")]);
    r.assert_ok();
    let foreign: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("DEBUG") && !l.contains("gitops_flow"))
        .collect();
    assert!(foreign.is_empty(), "debug lines of other crates: {foreign:#?}");
    fake.assert_clean();
}
