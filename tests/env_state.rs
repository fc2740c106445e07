//! Issue 10: one answer to "what runs there". A file-tracked environment's revision is
//! the last commit on the main branch that changed any of its version locations —
//! the same in `status`, `report` and the outputs, on both backends.

mod support;

use support::fake_argocd::{ARGO_TOKEN, AppState, FakeArgo};
use support::fake_github::FakeGitHub;
use support::{Jobs, git, rev, run, scratch};

/// The file fixture with payments' version in two files per environment; in dev the
/// first file changes, then the second, then an unrelated file. Returns the commit
/// that changed the second file (what dev runs) and the main head.
fn two_version_files() -> (tempfile::TempDir, std::path::PathBuf, String, String) {
    let (t, dir) = scratch("make_file_repo.sh");
    let config = std::fs::read_to_string(dir.join("gitops-flow.yaml")).unwrap();
    let config = config.replace(
        "        key: image.tag\n",
        "        key: image.tag\n      - file: overlays/{env}/payments/image.yaml\n        key: tag\n",
    );
    std::fs::write(dir.join("gitops-flow.yaml"), config).unwrap();
    for env in ["dev", "qa", "prod"] {
        std::fs::write(
            dir.join(format!("overlays/{env}/payments/image.yaml")),
            "tag: \"1.0.0\"\n",
        )
        .unwrap();
    }
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-qm", "payments: a second version file"]);
    let values = dir.join("overlays/dev/payments/values.yaml");
    let text = std::fs::read_to_string(&values).unwrap();
    std::fs::write(&values, text.replace("tag: \"1.0.0\"", "tag: \"1.1.0\"")).unwrap();
    git(&dir, &["commit", "-qam", "dev: values.yaml to 1.1.0"]);
    std::fs::write(dir.join("overlays/dev/payments/image.yaml"), "tag: \"1.1.0\"\n").unwrap();
    git(&dir, &["commit", "-qam", "dev: image.yaml to 1.1.0"]);
    let second = rev(&dir, "HEAD");
    std::fs::write(dir.join("README.md"), "unrelated\n").unwrap();
    git(&dir, &["add", "README.md"]);
    git(&dir, &["commit", "-qm", "docs"]);
    let head = rev(&dir, "HEAD");
    (t, dir, second, head)
}

#[test]
fn status_report_and_outputs_agree_on_a_file_environments_revision() {
    let (_t, dir, second, head) = two_version_files();
    let path = dir.display().to_string();
    // Argo CD runs the main head, which contains the change.
    let argo = FakeArgo::start(
        "payments-dev",
        vec![AppState::new("Healthy", "Synced", &head, "Succeeded")],
    );
    let status = run(
        &[
            "status",
            "--path",
            &path,
            "--service",
            "payments",
            "--environment",
            "dev",
            "--argocd-server",
            &argo.url,
            "--argocd-token",
            ARGO_TOKEN,
            "--timeout",
            "3",
        ],
        &[("GITOPS_FLOW_POLL_MS", "20")],
    );
    status.assert_ok();
    assert_eq!(
        status.out("revision"),
        second,
        "status: the commit that changed the second file"
    );

    let report = run(&["report", "--path", &path], &[]);
    report.assert_ok();
    let j: serde_json::Value = serde_json::from_str(report.out("report")).unwrap();
    assert_eq!(
        j["payments"]["dev"]["revision"],
        second.as_str(),
        "report agrees with status"
    );
    assert_eq!(j["payments"]["dev"]["version"], "1.1.0");
    // An environment nobody changed since the start runs the commit that added its last file.
    assert_eq!(j["payments"]["qa"]["revision"], rev(&dir, "HEAD~3").as_str());

    // The GitHub backend answers the same.
    let fake = FakeGitHub::start(&dir);
    let jobs = Jobs::new(&fake);
    let r = jobs.run(&[("command", "report")], &[]);
    r.assert_ok();
    let g: serde_json::Value = serde_json::from_str(r.out("report")).unwrap();
    assert_eq!(g, j, "github and local backends agree");
    fake.assert_clean();
}

/// Each cell's revision is the last first-parent commit that changed the value at
/// one of its locations: touching a file without changing the value does not count,
/// a merge counts as a whole (what its branch did and undid is not seen), and a
/// value never changed since the root commit is the root's.
#[test]
fn report_revisions_follow_value_changes_on_the_first_parent_chain() {
    let (_t, dir, c) = support::interleaved_file_repo();
    let report = run(&["report", "--path", &dir.display().to_string()], &[]);
    report.assert_ok();
    let j: serde_json::Value = serde_json::from_str(report.out("report")).unwrap();
    let expected = [
        ("alpha", "dev", "1.3.0", &c.alpha_dev_3),
        ("alpha", "prod", "1.2.0", &c.merge),
        ("beta", "dev", "2.3.0", &c.beta_dev_first),
        ("beta", "prod", "2.2.0", &c.merge),
        ("gamma", "dev", "3.0.0", &c.root),
        ("gamma", "prod", "3.0.0", &c.root),
    ];
    for (service, env, version, revision) in expected {
        assert_eq!(j[service][env]["version"], version, "{service} in {env}: {j}");
        assert_eq!(
            j[service][env]["revision"],
            revision.as_str(),
            "{service} in {env}: {j}"
        );
    }
    // Commits that never set a cell's revision.
    for never in [&c.alpha_dev_1, &c.beta_dev_nested, &c.touch, &c.touch_again] {
        assert!(!j.to_string().contains(never.as_str()), "{never} in {j}");
    }

    // The GitHub backend answers the same.
    let fake = FakeGitHub::start(&dir);
    let jobs = Jobs::new(&fake);
    let r = jobs.run(&[("command", "report")], &[]);
    r.assert_ok();
    let g: serde_json::Value = serde_json::from_str(r.out("report")).unwrap();
    assert_eq!(g, j, "github and local backends agree");
    fake.assert_clean();
}
