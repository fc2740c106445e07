//! `preview` through the real binary: pull_request events (recorded payloads with the
//! pull request patched in) against the fake GitHub, whose deployments and statuses
//! are checked against GitHub's OpenAPI description, and the fake Argo CD.

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::fake_argocd::{ARGO_TOKEN, AppState, FakeArgo};
use support::fake_github::FakeGitHub;
use support::{Jobs, Run, event_file, scratch};

const BRANCH: &str = "Feature/Login_Page";
const SLUG: &str = "feature-login-page";
const ENV: &str = "preview-feature-login-page";
const APP: &str = "web-pr-1";

struct World {
    _seed: tempfile::TempDir,
    fake: FakeGitHub,
    events: tempfile::TempDir,
    n: std::sync::atomic::AtomicUsize,
}

impl World {
    /// An application repository with a pull request from `BRANCH`, labelled `labels`.
    fn new(labels: &[&str]) -> (World, String, u64) {
        let (seed, dir) = scratch("make_tag_repo.sh");
        let fake = FakeGitHub::start(&dir);
        let head = fake.push_commit(BRANCH, "refs/heads/main", "src/app.txt", "v1\n");
        let number = fake.open_pull(BRANCH, "main", labels);
        let w = World {
            _seed: seed,
            fake,
            events: tempfile::tempdir().expect("tempdir"),
            n: Default::default(),
        };
        (w, head, number)
    }

    fn push(&self, content: &str) -> String {
        self.fake.push_commit(BRANCH, "refs/heads/main", "src/app.txt", content)
    }

    /// A recorded `pull_request.<action>` payload with the pull request as it is now
    /// (or with `head` as it was when the event fired).
    fn event(&self, action: &str, label: Option<&str>, head: Option<&str>) -> PathBuf {
        let fixture = match action {
            "labeled" => "pull_request.labeled.8.json",
            "unlabeled" => "pull_request.unlabeled.25.json",
            "synchronize" => "pull_request.synchronize.22.json",
            "opened" => "pull_request.opened.0.json",
            "reopened" => "pull_request.reopened.18.json",
            "closed" => "pull_request.closed.3.json",
            other => panic!("no fixture for {other}"),
        };
        let mut pr = self.fake.pull_payload(1);
        if let Some(h) = head {
            pr["head"]["sha"] = json!(h);
        }
        let mut patch = json!({"action": action, "number": 1, "pull_request": pr});
        if let Some(l) = label {
            patch["label"] = json!({"name": l});
        }
        let n = self.n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = self.events.path().join(format!("e{n}"));
        std::fs::create_dir_all(&dir).expect("dir");
        event_file(&dir, fixture, patch)
    }

    fn run(&self, event: &Path, inputs: &[(&str, &str)]) -> Run {
        self.run_as("pull_request", event, inputs)
    }

    fn run_as(&self, name: &str, event: &Path, inputs: &[(&str, &str)]) -> Run {
        let mut all = vec![
            ("command", "preview"),
            ("service", "web"),
            ("url", "https://{slug}.acme.inc"),
            ("timeout", "2"),
        ];
        for (k, v) in inputs {
            all.retain(|(a, _)| a != k);
            all.push((k, v));
        }
        let jobs = Jobs::new(&self.fake);
        let path = event.display().to_string();
        let r = jobs.run(
            &all,
            &[
                ("GITHUB_EVENT_NAME", name),
                ("GITHUB_EVENT_PATH", &path),
                ("GITHUB_RUN_ID", "4242"),
                ("GITOPS_FLOW_POLL_MS", "20"),
            ],
        );
        self.fake.assert_clean();
        r
    }

    fn states(&self) -> Vec<(String, Vec<String>)> {
        self.fake
            .deployments()
            .into_iter()
            .map(|d| (d.sha[..7].to_string(), d.statuses))
            .collect()
    }

    fn writes(&self) -> Vec<String> {
        self.fake
            .requests()
            .into_iter()
            // GraphQL `repository` queries read; anything else that is not a GET writes.
            .filter(|r| r.method != "GET" && !(r.path == "/api/graphql" && r.graphql.iter().all(|f| f == "repository")))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

fn healthy(sha: &str) -> AppState {
    AppState::new("Healthy", "Synced", sha, "Succeeded")
}

fn argo(script: Vec<AppState>) -> FakeArgo {
    FakeArgo::start(APP, script)
}

fn with_argo<'a>(a: &'a FakeArgo, more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut v = vec![("argocd-server", a.url.as_str()), ("argocd-token", ARGO_TOKEN)];
    v.extend_from_slice(more);
    v
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn lifecycle_label_push_unlabel_label_close() {
    let (w, head1, _) = World::new(&["preview"]);

    // Labelled: a transient deployment of the head, in_progress, then success once
    // Argo CD has the application Healthy and Synced at that head.
    let a = argo(vec![
        AppState::new("Progressing", "OutOfSync", &head1, "Running"),
        healthy(&head1),
    ]);
    let r = w.run(&w.event("labeled", Some("preview"), None), &with_argo(&a, &[]));
    r.assert_ok();
    assert_eq!(r.out("environment"), ENV);
    assert_eq!(r.out("url"), format!("https://{SLUG}.acme.inc"));
    assert_eq!(r.out("state"), "success");
    assert_eq!(r.out("deployment-id"), "1");
    assert_eq!(r.out("changed"), "true");
    assert_eq!(r.out("revision"), head1);
    let result: Value = serde_json::from_str(r.out("result")).unwrap();
    assert_eq!(result["state"], "success");
    assert_eq!(result["deployment-id"], 1);
    let d = &w.fake.deployments()[0];
    assert_eq!((d.environment.as_str(), d.sha.as_str()), (ENV, head1.as_str()));
    assert!(d.transient && !d.production);
    assert_eq!(
        d.payload,
        json!({"service": "web", "number": 1, "branch": BRANCH, "command": "preview"})
    );
    assert_eq!(d.statuses, s(&["in_progress", "success"]));
    let log = format!("{}/acme/gitops/actions/runs/4242", w.fake.url);
    assert_eq!(d.status_bodies[0]["log_url"], json!(log));
    assert_eq!(d.status_bodies[1]["log_url"], json!(log));
    assert_eq!(
        d.status_bodies[1]["environment_url"],
        json!(format!("https://{SLUG}.acme.inc"))
    );
    assert!(
        a.requests()
            .iter()
            .all(|p| p.starts_with(&format!("/api/v1/applications/{APP}")))
    );

    // A push: a new deployment for the new head; the old one becomes inactive.
    let head2 = w.push("v2\n");
    let a = argo(vec![healthy(&head2)]);
    let r = w.run(&w.event("synchronize", None, None), &with_argo(&a, &[]));
    r.assert_ok();
    assert_eq!((r.out("deployment-id"), r.out("state")), ("2", "success"));
    assert_eq!(
        w.states(),
        [
            (head1[..7].to_string(), s(&["in_progress", "success", "inactive"])),
            (head2[..7].to_string(), s(&["in_progress", "success"])),
        ]
    );

    // Label removed: every active deployment of the environment inactive, nothing deleted.
    w.fake.set_labels(1, &[]);
    let r = w.run(&w.event("unlabeled", Some("preview"), None), &[]);
    r.assert_ok();
    assert_eq!((r.out("state"), r.out("changed")), ("inactive", "true"));
    assert_eq!(w.fake.deployments().len(), 2);
    assert_eq!(w.fake.deployments()[1].state(), Some("inactive"));
    assert!(w.writes().iter().all(|x| x.starts_with("POST")), "{:?}", w.writes());

    // Labelled again at the same head: the deployment of that head is reused.
    w.fake.set_labels(1, &["preview"]);
    let a = argo(vec![healthy(&head2)]);
    let r = w.run(&w.event("labeled", Some("preview"), None), &with_argo(&a, &[]));
    r.assert_ok();
    assert_eq!((r.out("deployment-id"), r.out("state")), ("2", "success"));
    assert_eq!(w.fake.deployments().len(), 2);
    assert_eq!(
        w.fake.deployments()[1].statuses,
        s(&["in_progress", "success", "inactive", "in_progress", "success"])
    );

    // Closed: inactive again.
    w.fake.close_pull(1);
    let r = w.run(&w.event("closed", None, None), &[]);
    r.assert_ok();
    assert_eq!(r.out("state"), "inactive");
    assert!(w.fake.deployments().iter().all(|d| d.state() == Some("inactive")));

    // Closed twice: nothing left to do.
    w.fake.clear_log();
    let r = w.run(&w.event("closed", None, None), &[]);
    r.assert_ok();
    assert_eq!(r.out("changed"), "false");
    assert!(w.writes().is_empty(), "{:?}", w.writes());
}

#[test]
fn healthy_at_the_previous_head_is_not_success() {
    let (w, head1, _) = World::new(&["preview"]);
    let a = argo(vec![healthy(&head1)]);
    w.run(&w.event("labeled", Some("preview"), None), &with_argo(&a, &[]))
        .assert_ok();
    let head2 = w.push("v2\n");

    // Argo CD still shows the previous push Healthy and Synced for a while: wait.
    let a = argo(vec![
        healthy(&head1),
        healthy(&head1),
        healthy(&head1),
        AppState::new("Progressing", "Synced", &head2, "Running"),
        healthy(&head2),
    ]);
    let r = w.run(&w.event("synchronize", None, None), &with_argo(&a, &[]));
    r.assert_ok();
    assert_eq!(r.out("state"), "success");
    assert_eq!(a.requests().len(), 5, "{:?}", a.requests());

    // It never gets past the previous push: failure, not success.
    let head3 = w.push("v3\n");
    let a = argo(vec![healthy(&head2)]);
    let r = w.run(&w.event("synchronize", None, None), &with_argo(&a, &[("timeout", "1")]));
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(r.out("state"), "failure");
    let err = r.stdout.lines().find(|l| l.starts_with("::error::")).unwrap();
    assert!(err.contains("timed out") && err.contains(&head3[..7]), "{err}");
    let d = w.fake.deployments();
    assert_eq!(d[2].sha, head3);
    assert_eq!(d[2].statuses, s(&["in_progress", "failure"]));
    assert_eq!(d[1].state(), Some("inactive"));
}

#[test]
fn degraded_is_failure_and_missing_application_or_argo_error_is_error() {
    let (w, head, _) = World::new(&["preview"]);
    let a = argo(vec![
        AppState::new("Progressing", "Synced", &head, "Running"),
        AppState::new("Degraded", "Synced", &head, "Succeeded"),
    ]);
    let r = w.run(&w.event("labeled", Some("preview"), None), &with_argo(&a, &[]));
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(r.out("state"), "failure");
    assert_eq!(w.fake.deployments()[0].statuses, s(&["in_progress", "failure"]));
    assert!(
        w.fake.deployments()[0].status_bodies[1]["description"]
            .as_str()
            .unwrap()
            .contains("health=Degraded")
    );

    // The application never appears (Argo CD answers 403 for an unknown one): error.
    let other = FakeArgo::start("someone-else", vec![healthy(&head)]);
    let r = w.run(
        &w.event("labeled", Some("preview"), None),
        &with_argo(&other, &[("timeout", "1")]),
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(r.out("state"), "error");
    let err = r.stdout.lines().find(|l| l.starts_with("::error::")).unwrap();
    assert!(err.contains(&format!("`{APP}` did not appear")), "{err}");
    assert!(other.requests().len() > 1, "waited for it: {:?}", other.requests());
    // The same deployment again (re-run after a failure re-gates it).
    assert_eq!(w.fake.deployments().len(), 1);
    assert_eq!(
        w.fake.deployments()[0].statuses,
        s(&["in_progress", "failure", "in_progress", "error"])
    );

    // Argo CD refuses the token: error, and the token is nowhere in the output.
    let a = argo(vec![healthy(&head)]);
    let r = w.run(
        &w.event("labeled", Some("preview"), None),
        &[("argocd-server", a.url.as_str()), ("argocd-token", "wrong-token-xyz")],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(r.out("state"), "error");
    assert!(!r.stdout.contains("wrong-token-xyz") || r.stdout.contains("::add-mask::wrong-token-xyz"));
    assert_eq!(w.fake.deployments()[0].state(), Some("error"));
}

#[test]
fn without_argocd_success_at_once_with_a_notice() {
    let (w, head, _) = World::new(&["preview"]);
    // dry-run first: reads, reports, writes nothing.
    let r = w.run(&w.event("opened", None, None), &[("dry-run", "true")]);
    r.assert_ok();
    assert_eq!((r.out("changed"), r.out("environment")), ("false", ENV));
    assert!(r.summary.contains("Would create the deployment"), "{}", r.summary);
    assert!(w.writes().is_empty(), "{:?}", w.writes());
    let r = w.run(&w.event("opened", None, None), &[("url", "")]);
    r.assert_ok();
    assert_eq!(r.out("state"), "success");
    assert_eq!(r.out("url"), "");
    assert!(
        r.stdout
            .contains("::notice::preview: no `argocd-server` given, so nothing was checked"),
        "{}",
        r.stdout
    );
    let d = &w.fake.deployments()[0];
    assert_eq!(d.sha, head);
    assert_eq!(d.statuses, s(&["in_progress", "success"]));
    assert!(d.status_bodies[1].get("environment_url").is_none());
}

#[test]
fn rerun_of_the_same_event_is_idempotent() {
    let (w, head, _) = World::new(&["preview"]);
    let a = argo(vec![healthy(&head)]);
    let ev = w.event("labeled", Some("preview"), None);
    w.run(&ev, &with_argo(&a, &[])).assert_ok();
    w.fake.clear_log();
    let r = w.run(&ev, &with_argo(&a, &[]));
    r.assert_ok();
    assert_eq!(
        (r.out("changed"), r.out("state"), r.out("deployment-id")),
        ("false", "success", "1")
    );
    assert_eq!(w.fake.deployments().len(), 1);
    assert!(w.writes().is_empty(), "{:?}", w.writes());
    // pull_request_target carries the same payload.
    let r = w.run_as("pull_request_target", &ev, &with_argo(&a, &[]));
    r.assert_ok();
    assert_eq!(r.out("changed"), "false");
}

#[test]
fn a_run_for_an_outdated_head_changes_nothing() {
    let (w, head1, _) = World::new(&["preview"]);
    let old_event = w.event("labeled", Some("preview"), None);
    let head2 = w.push("v2\n");
    let a = argo(vec![healthy(&head2)]);
    w.run(&w.event("synchronize", None, None), &with_argo(&a, &[]))
        .assert_ok();
    // The labelled run for the first head comes late (queued, or re-run).
    w.fake.clear_log();
    let a = argo(vec![healthy(&head1)]);
    let r = w.run(&old_event, &with_argo(&a, &[]));
    r.assert_ok();
    assert_eq!(r.out("changed"), "false");
    assert!(r.stdout.contains(&format!("is at {} now", &head2[..7])), "{}", r.stdout);
    assert!(w.writes().is_empty(), "{:?}", w.writes());
    assert!(a.requests().is_empty());
    assert_eq!(w.states(), [(head2[..7].to_string(), s(&["in_progress", "success"]))]);
}

#[test]
fn two_runs_racing_for_an_old_and_a_new_head() {
    let (w, head1, _) = World::new(&["preview"]);
    // The run for the first head is gating (the application is still progressing)...
    let slow = argo(vec![AppState::new("Progressing", "OutOfSync", &head1, "Running")]);
    let old_event = w.event("labeled", Some("preview"), None);
    let r_old = std::thread::scope(|scope| {
        let old = scope.spawn(|| w.run(&old_event, &with_argo(&slow, &[("timeout", "20")])));
        let t0 = std::time::Instant::now();
        while w
            .fake
            .deployments()
            .first()
            .is_none_or(|d| d.state() != Some("in_progress"))
        {
            assert!(t0.elapsed().as_secs() < 20, "the old run never started");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // ...when a push comes in, and its run finishes first.
        let head2 = w.push("v2\n");
        let a = argo(vec![healthy(&head2)]);
        let r = w.run(&w.event("synchronize", None, None), &with_argo(&a, &[]));
        r.assert_ok();
        assert_eq!(r.out("state"), "success");
        // Now the old head turns healthy (too late).
        slow.set_script(vec![healthy(&head1)]);
        old.join().expect("old run")
    });
    r_old.assert_ok();
    assert_eq!(r_old.out("state"), "inactive");
    let d = w.fake.deployments();
    assert_eq!(d.len(), 2);
    assert!(!d[0].statuses.contains(&"success".to_string()), "{:?}", d[0].statuses);
    assert_eq!(d[0].state(), Some("inactive"));
    assert_eq!(d[1].statuses, s(&["in_progress", "success"]));
}

#[test]
fn other_labels_and_unlabelled_pull_requests_are_no_ops() {
    let (w, _, _) = World::new(&["bug"]);
    for (action, label) in [
        ("opened", None),
        ("synchronize", None),
        ("labeled", Some("bug")),
        ("unlabeled", Some("bug")),
    ] {
        let r = w.run(&w.event(action, label, None), &[]);
        r.assert_ok();
        assert_eq!(r.out("changed"), "false");
        assert!(r.stdout.contains("::notice::preview: nothing to do"), "{}", r.stdout);
    }
    assert!(w.fake.deployments().is_empty());
    assert!(w.writes().is_empty(), "{:?}", w.writes());

    // A custom label, environment and application template.
    w.fake.set_labels(1, &["bug", "deploy-preview"]);
    let r = w.run(
        &w.event("labeled", Some("deploy-preview"), None),
        &[
            ("label", "deploy-preview"),
            ("service", ""),
            ("environment", "pr-{number}"),
            ("url", "https://{short_sha}.{slug}.acme.inc"),
        ],
    );
    r.assert_ok();
    assert_eq!((r.out("environment"), r.out("service")), ("pr-1", "gitops"));
    assert!(r.out("url").ends_with(&format!(".{SLUG}.acme.inc")));
    assert_eq!(w.fake.deployments()[0].environment, "pr-1");
}

#[test]
fn bad_input_is_exit_2_before_any_write() {
    let (w, _, _) = World::new(&["preview"]);
    let ev = w.event("labeled", Some("preview"), None);
    for (inputs, needle) in [
        (vec![("environment", "preview-{nope}")], "uses `{nope}`"),
        (vec![("url", "{slug}.acme.inc")], "not an http(s) URL"),
        (
            vec![("argocd-app", "{branch}")],
            "cannot be an Argo CD application name",
        ),
        (vec![("argocd-server", "http://127.0.0.1:9")], "`argocd-token` is not"),
        (vec![("backend", "local")], "use `backend: github`"),
    ] {
        w.run(&ev, &inputs).assert_input_error(needle);
    }
    let jobs = Jobs::new(&w.fake);
    let r = jobs.run(&[("command", "preview")], &[("GITHUB_EVENT_NAME", "push")]);
    r.assert_input_error("runs on pull_request or pull_request_target events");
    assert!(w.fake.deployments().is_empty());
    assert!(w.writes().is_empty(), "{:?}", w.writes());
}

#[test]
fn slugs_of_weird_and_long_branch_names_name_the_environment() {
    for (branch, slug) in [
        ("UPPER/Case", "upper-case"),
        ("feat/a/b/c", "feat-a-b-c"),
        ("snake_case_name", "snake-case-name"),
        ("release/v1.2.3", "release-v1-2-3"),
        ("feature/Überprüfung-Straße", "feature-uberprufung-strasse"),
        (
            "feature/add-the-new-checkout-flow-with-apple-pay-and-google-pay-support-for-euro",
            "feature-add-the-new-checkout-flow-with-apple-pay",
        ),
    ] {
        let (w, head, _) = World::new(&["preview"]);
        let mut pr = w.fake.pull_payload(1);
        pr["head"]["ref"] = json!(branch);
        let dir = w.events.path().join("slug");
        std::fs::create_dir_all(&dir).unwrap();
        let ev = event_file(
            &dir,
            "pull_request.labeled.8.json",
            json!({"action": "labeled", "number": 1, "pull_request": pr, "label": {"name": "preview"}}),
        );
        let r = w.run(&ev, &[("argocd-app", "{service}-{slug}")]);
        r.assert_ok();
        assert_eq!(r.out("environment"), format!("preview-{slug}"), "{branch}");
        assert_eq!(r.out("url"), format!("https://{slug}.acme.inc"));
        assert_eq!(w.fake.deployments()[0].sha, head);
        assert_eq!(w.fake.deployments()[0].payload["branch"], json!(branch));
    }
}
