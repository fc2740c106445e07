//! Argo CD sync for manual-sync environments (`sync` / `argocd-sync: true`), and the
//! hold that `rollback-on-failure` takes, through the real binary against the fake
//! Argo CD (sync bodies checked against Argo CD's swagger).

mod support;

use std::path::Path;

use support::fake_argocd::{ARGO_TOKEN, AppState, FakeArgo, OnSync};
use support::{git, rev, run, scratch};

const FAST: [(&str, &str); 1] = [("GITOPS_FLOW_POLL_MS", "20")];

/// The tag fixture with production marked manual-sync in the config.
fn manual_sync_repo(extra: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let (t, dir) = scratch("make_tag_repo.sh");
    std::fs::write(
        dir.join("gitops-flow.yaml"),
        format!("{extra}environments:\n  - name: staging\n  - name: production\n    argocd-sync: true\n"),
    )
    .unwrap();
    git(&dir, &["add", "gitops-flow.yaml"]);
    git(&dir, &["commit", "-qm", "production is manual-sync"]);
    (t, dir)
}

fn with_argo<'a>(a: Vec<&'a str>, argo: &'a FakeArgo, path: &'a str) -> Vec<&'a str> {
    with_argo_in(a, argo, path, "3")
}

fn with_argo_in<'a>(mut a: Vec<&'a str>, argo: &'a FakeArgo, path: &'a str, timeout: &'a str) -> Vec<&'a str> {
    a.extend([
        "--path",
        path,
        "--argocd-server",
        &argo.url,
        "--argocd-token",
        ARGO_TOKEN,
        "--timeout",
        timeout,
    ]);
    a
}

fn deployed(dir: &Path) -> (String, String) {
    let path = dir.display().to_string();
    let head = rev(dir, "main");
    run(
        &["deploy", "--path", &path, "--service", "payments", "--revision", &head],
        &[],
    )
    .assert_ok();
    (head, rev(dir, "payments-production"))
}

#[test]
fn a_move_into_a_manual_sync_environment_syncs_then_gates() {
    let (_t, dir) = manual_sync_repo("");
    let path = dir.display().to_string();
    let (head, _old) = deployed(&dir);
    // After the refresh Argo CD sees the new revision, but nobody syncs it.
    let argo = FakeArgo::start(
        "payments-production",
        vec![AppState::new("Healthy", "OutOfSync", &head, "Succeeded")],
    );
    argo.on_sync(OnSync::Accept(vec![
        AppState::new("Progressing", "Synced", &head, "Running"),
        AppState::new("Healthy", "Synced", &head, "Succeeded"),
    ]));
    let r = run(
        &with_argo(vec!["promote", "--service", "payments", "--wait"], &argo, &path),
        &FAST,
    );
    r.assert_ok();
    assert_eq!(rev(&dir, "payments-production"), head);
    assert_eq!(argo.syncs(), vec![serde_json::json!({"name": "payments-production"})]);
    assert!(argo.violations().is_empty(), "{:?}", argo.violations());
    let reqs = argo.requests();
    let post = reqs.iter().position(|r| r.ends_with("/sync")).expect("a sync request");
    assert!(
        reqs[0].ends_with("?refresh=normal") && post == 1,
        "refresh, then sync, then gate: {reqs:?}"
    );
    assert!(r.stdout.contains("asked Argo CD to sync"), "{}", r.stdout);
}

#[test]
fn without_sync_the_same_application_never_becomes_healthy() {
    // The counterpart of the test above: the environment does not ask for a sync.
    let (_t, dir) = scratch("make_tag_repo.sh");
    let path = dir.display().to_string();
    let (head, _) = deployed(&dir);
    let argo = FakeArgo::start(
        "payments-production",
        vec![AppState::new("Healthy", "OutOfSync", &head, "Succeeded")],
    );
    let a = with_argo_in(vec!["promote", "--service", "payments", "--wait"], &argo, &path, "1");
    let r = run(&a, &FAST);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(argo.syncs().is_empty());
}

#[test]
fn a_running_operation_is_not_interrupted() {
    let (_t, dir) = manual_sync_repo("");
    let path = dir.display().to_string();
    let (head, old) = deployed(&dir);
    // Someone's sync of the old revision is running; when it ends the application
    // is OutOfSync at the new revision, and only then is a sync asked for.
    let argo = FakeArgo::start(
        "payments-production",
        vec![
            AppState::new("Progressing", "OutOfSync", &head, "Running"),
            AppState::new("Progressing", "OutOfSync", &head, "Running"),
            AppState::new("Healthy", "OutOfSync", &head, "Succeeded"),
        ],
    );
    argo.on_sync(OnSync::Accept(vec![AppState::new(
        "Healthy",
        "Synced",
        &head,
        "Succeeded",
    )]));
    let r = run(
        &with_argo(vec!["promote", "--service", "payments", "--wait"], &argo, &path),
        &FAST,
    );
    r.assert_ok();
    assert_ne!(old, head);
    let reqs = argo.requests();
    let post = reqs
        .iter()
        .position(|r| r.ends_with("/sync"))
        .expect("a sync after the operation");
    assert_eq!(post, 3, "no sync while the operation ran: {reqs:?}");
    assert_eq!(argo.syncs().len(), 1, "one sync: {reqs:?}");
    assert!(r.stdout.contains("not interrupted"), "{}", r.stdout);
}

#[test]
fn a_sync_argo_cd_refuses_is_exit_1_with_its_message() {
    let (_t, dir) = manual_sync_repo("");
    let path = dir.display().to_string();
    let (head, _) = deployed(&dir);
    let argo = FakeArgo::start(
        "payments-production",
        vec![AppState::new("Healthy", "OutOfSync", &head, "")],
    );
    argo.on_sync(OnSync::Refuse(403, "cannot sync: blocked by sync window"));
    // Without `wait`: the sync is asked for all the same.
    let r = run(
        &with_argo(vec!["promote", "--service", "payments"], &argo, &path),
        &FAST,
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    let err = r.stdout.lines().find(|l| l.starts_with("::error")).unwrap();
    assert!(
        err.contains("blocked by sync window") && err.contains("refused to sync"),
        "{err}"
    );
    // The tag moved: the outputs say so.
    assert_eq!(r.out("changed"), "true");
    assert_eq!(rev(&dir, "payments-production"), head);
    assert_eq!(argo.syncs().len(), 1);
    assert!(argo.violations().is_empty());
}

#[test]
fn status_with_sync_syncs_only_what_is_out_of_sync_at_the_expected_revision() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let path = dir.display().to_string();
    let (head, old) = deployed(&dir);
    run(&["promote", "--path", &path, "--service", "payments"], &[]).assert_ok();
    // OutOfSync, but at another revision: no sync.
    let argo = FakeArgo::start(
        "payments-production",
        vec![AppState::new("Healthy", "OutOfSync", &old, "")],
    );
    argo.on_sync(OnSync::Accept(vec![AppState::new(
        "Healthy",
        "Synced",
        &head,
        "Succeeded",
    )]));
    let a = with_argo_in(vec!["status", "--service", "payments", "--sync"], &argo, &path, "1");
    let r = run(&a, &FAST);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(argo.syncs().is_empty(), "not at the expected revision: no sync");
    // OutOfSync at the expected revision, no operation: synced, then healthy.
    argo.set_script(vec![AppState::new("Healthy", "OutOfSync", &head, "")]);
    let r = run(
        &with_argo(vec!["status", "--service", "payments", "--sync"], &argo, &path),
        &FAST,
    );
    r.assert_ok();
    assert_eq!(argo.syncs().len(), 1);
    // Synced already: nothing to do.
    argo.set_script(vec![AppState::new("Healthy", "Synced", &head, "Succeeded")]);
    run(
        &with_argo(vec!["status", "--service", "payments", "--sync"], &argo, &path),
        &FAST,
    )
    .assert_ok();
    assert_eq!(argo.syncs().len(), 1);
    assert!(argo.violations().is_empty());
}

#[test]
fn sync_without_argo_cd_is_an_input_error_before_any_write() {
    let (_t, dir) = manual_sync_repo("");
    let path = dir.display().to_string();
    let head = rev(&dir, "main");
    run(
        &["deploy", "--path", &path, "--service", "payments", "--revision", &head],
        &[],
    )
    .assert_ok();
    let before = support::refs(&dir);
    run(&["promote", "--path", &path, "--service", "payments"], &[])
        .assert_input_error("environment `production` says `argocd-sync: true`");
    let (_t2, plain) = scratch("make_tag_repo.sh");
    let plain_path = plain.display().to_string();
    run(
        &[
            "promote",
            "--path",
            &plain_path,
            "--service",
            "payments",
            "--sync",
            "--argocd-server",
            "http://127.0.0.1:9",
        ],
        &[],
    )
    .assert_input_error("`argocd-token` is");
    assert_eq!(support::refs(&dir), before);
    // Staging does not ask for a sync: no Argo CD needed there.
    run(
        &["deploy", "--path", &path, "--service", "orders", "--revision", &head],
        &[],
    )
    .assert_ok();
}

#[test]
fn rollback_on_failure_holds_the_environment_unless_the_config_says_not_to() {
    for (extra, holds) in [("", true), ("hold-on-rollback: false\n", false)] {
        let (_t, dir) = manual_sync_repo(extra);
        let path = dir.display().to_string();
        let (head, initial) = deployed(&dir);
        let argo = FakeArgo::start(
            "payments-production",
            vec![AppState::new("Healthy", "OutOfSync", &head, "")],
        );
        argo.on_sync(OnSync::Accept(vec![AppState::new(
            "Degraded",
            "Synced",
            &head,
            "Succeeded",
        )]));
        let r = run(
            &with_argo(
                vec!["promote", "--service", "payments", "--wait", "--rollback-on-failure"],
                &argo,
                &path,
            ),
            &[("GITOPS_FLOW_POLL_MS", "20"), ("GITHUB_ACTOR", "release-bot")],
        );
        assert_eq!(r.code, 1, "{}", r.stdout);
        assert_eq!(rev(&dir, "payments-production"), initial, "rolled back");
        // The rollback is synced too (manual-sync environment).
        assert_eq!(argo.syncs().len(), 2, "{:?}", argo.requests());
        let file = std::process::Command::new("git")
            .args(["show", "main:.gitops-flow/holds.yaml"])
            .current_dir(&dir)
            .output()
            .unwrap();
        if holds {
            let text = String::from_utf8_lossy(&file.stdout);
            assert!(
                text.contains("by: \"@release-bot\"") && text.contains("rolled back automatically"),
                "{text}"
            );
            assert!(r.summary.contains("is now held"), "{}", r.summary);
            // The next promotion does not undo the rollback.
            let again = run(
                &with_argo(vec!["promote", "--service", "payments"], &argo, &path),
                &FAST,
            );
            assert_eq!(again.code, 1, "{}", again.stdout);
            assert_eq!(again.out("held"), "true");
            assert_eq!(rev(&dir, "payments-production"), initial);
        } else {
            assert!(!file.status.success(), "no holds file");
        }
    }
}
