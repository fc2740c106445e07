//! Retries as a policy, through the real binary against the fake GitHub (issue 9,
//! section 5): rate limits, GraphQL permission errors, deployments that must not
//! be created twice, auto-merge with the methods the repository allows.

mod support;

use support::fake_github::{FakeGitHub, MergeSettings};
use support::{Jobs, scratch};

fn error_line(r: &support::Run) -> &str {
    r.stdout
        .lines()
        .find(|l| l.starts_with("::error"))
        .unwrap_or_else(|| panic!("no ::error:: in\n{}\n{}", r.stdout, r.stderr))
}

fn notices(r: &support::Run) -> Vec<&str> {
    r.stdout.lines().filter(|l| l.starts_with("::notice::")).collect()
}

fn setup() -> (FakeGitHub, tempfile::TempDir) {
    let (seed, dir) = scratch("make_tag_repo.sh");
    (FakeGitHub::start(&dir), seed)
}

#[test]
fn an_exhausted_primary_rate_limit_says_so_and_until_when() {
    let (fake, _seed) = setup();
    let j = Jobs::new(&fake);
    // Reset in 2100: far beyond any budget.
    fake.fail_next_with(
        403,
        &[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-reset", "4102444800"),
        ],
        r#"{"message":"API rate limit exceeded for installation ID 1.","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}"#,
    );
    let r = j.run(&[("command", "report")], &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(
        error_line(&r),
        "::error::POST /api/graphql hit GitHub's API rate limit: this token's requests are used up (x-ratelimit-remaining: 0) until 2100-01-01 00:00:00 UTC; re-run the job after that, or use a token with a higher limit (a GitHub App token)"
    );
    assert_eq!(fake.requests().len(), 1, "not retried in vain");
    // A huge reset is no overflow either.
    fake.fail_next_with(
        429,
        &[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "18446744073709551615"),
        ],
        "{}",
    );
    let r = j.run(&[("command", "report")], &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        error_line(&r).contains("until second 18446744073709551615 after 1970"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_secondary_limit_longer_than_the_budget_says_when_to_retry() {
    let (fake, _seed) = setup();
    let j = Jobs::new(&fake);
    fake.fail_next_with(
        403,
        &[
            ("retry-after", "18446744073709551615"),
            ("x-ratelimit-remaining", "4999"),
        ],
        r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}"#,
    );
    let r = j.run(&[("command", "report")], &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let err = error_line(&r);
    assert!(
        err.starts_with("::error::POST /api/graphql hit GitHub's secondary rate limit, which asks to wait 18446744073709551615s, more than the 11"),
        "{err}"
    );
    assert!(
        err.ends_with("s left; re-run the job after second 18446744073709551615 after 1970 (a bogus reset time)"),
        "{err}"
    );
    assert_eq!(fake.requests().len(), 1);
}

#[test]
fn graphql_permission_errors_carry_the_permission_hint() {
    let (fake, _seed) = setup();
    let j = Jobs::new(&fake);
    let head = fake.rev("main").unwrap();
    let before = fake.refs();
    // Refused twice: a refusal of the guarded move is tried once more without the
    // hold guard (in case the guard ref was what GitHub refused).
    for _ in 0..2 {
        fake.graphql_error_on("updateRefs", "FORBIDDEN", "Resource not accessible by integration");
    }
    let r = j.run(
        &[("command", "deploy"), ("service", "payments"), ("revision", &head)],
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(
        error_line(&r),
        "::error::GitHub GraphQL API: Resource not accessible by integration; the token lacks a permission: give the workflow `permissions: contents: write` (and `pull-requests: write`, `deployments: write`, `statuses: read` as the command needs)"
    );
    assert_eq!(fake.refs(), before);
    fake.graphql_error_on(
        "repository",
        "NOT_FOUND",
        "Could not resolve to a Repository with the name 'acme/gitops'.",
    );
    let r = j.run(&[("command", "report")], &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(
        error_line(&r),
        "::error::GitHub GraphQL API: Could not resolve to a Repository with the name 'acme/gitops'.; the repository or object was not found, or the token cannot see it (`permissions: contents: read`)"
    );
    fake.assert_clean();
}

#[test]
fn a_deployment_whose_answer_was_lost_is_not_created_twice() {
    let (fake, _seed) = setup();
    let j = Jobs::new(&fake);
    let head = fake.rev("main").unwrap();
    fake.lose_answer("POST", "/deployments", 502);
    let r = j.run(
        &[
            ("command", "deploy"),
            ("service", "payments"),
            ("revision", &head),
            ("deployments", "true"),
        ],
        &[],
    );
    r.assert_ok();
    let d = fake.deployments();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].sha, head);
    assert_eq!(d[0].environment, "staging");
    assert_eq!(d[0].statuses, ["in_progress", "success"]);
    let posts: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|q| q.path.ends_with("/deployments"))
        .map(|q| (q.method, q.status))
        .collect();
    assert_eq!(posts, [("POST".to_string(), 502), ("GET".to_string(), 200)]);

    // The answer lost, and the deployment really not created: created again, once.
    let next = fake.rev("main").unwrap();
    fake.clear_log();
    fake.refuse_next("POST", "/deployments", 502);
    let r = j.run(
        &[("command", "promote"), ("service", "payments"), ("deployments", "true")],
        &[],
    );
    r.assert_ok();
    let d = fake.deployments();
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!(
        (d[1].sha.as_str(), d[1].environment.as_str()),
        (next.as_str(), "production")
    );
    let calls: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|q| q.path.ends_with("/deployments"))
        .map(|q| (q.method, q.status))
        .collect();
    assert_eq!(
        calls,
        [
            ("POST".to_string(), 502),
            ("GET".to_string(), 200),
            ("POST".to_string(), 201)
        ]
    );
    fake.assert_clean();
}

fn stage_with_auto_merge(fake: &FakeGitHub) -> support::Run {
    Jobs::new(fake).run(
        &[
            ("command", "stage"),
            ("service", "payments"),
            ("version", "9.9.9"),
            ("auto-merge", "true"),
        ],
        &[],
    )
}

#[test]
fn auto_merge_uses_a_method_the_repository_allows() {
    let (fake, _seed) = setup();
    fake.set_merge_settings(MergeSettings {
        squash_merge_allowed: false,
        ..MergeSettings::default()
    });
    let r = stage_with_auto_merge(&fake);
    r.assert_ok();
    assert_eq!(fake.auto_merges(), [(1, "MERGE".to_string())]);
    assert!(notices(&r).is_empty(), "{:?}", notices(&r));
    assert!(fake.pulls()[0].auto_merge);
    fake.assert_clean();

    let (fake, _seed) = setup();
    fake.set_merge_settings(MergeSettings {
        squash_merge_allowed: false,
        merge_commit_allowed: false,
        ..MergeSettings::default()
    });
    stage_with_auto_merge(&fake).assert_ok();
    assert_eq!(fake.auto_merges(), [(1, "REBASE".to_string())]);

    let (fake, _seed) = setup();
    stage_with_auto_merge(&fake).assert_ok();
    assert_eq!(fake.auto_merges(), [(1, "SQUASH".to_string())]);
}

#[test]
fn auto_merge_github_will_not_enable_is_a_notice() {
    let (fake, _seed) = setup();
    fake.set_merge_settings(MergeSettings {
        auto_merge_allowed: false,
        ..MergeSettings::default()
    });
    let r = stage_with_auto_merge(&fake);
    r.assert_ok();
    assert_eq!(r.out("pull-request-number"), "1");
    assert_eq!(r.out("changed"), "true");
    assert_eq!(
        notices(&r),
        [
            "::notice::auto-merge not enabled on pull request #1: the repository does not allow auto-merge; merge the pull request yourself, or turn on \"Allow auto-merge\" in the repository settings"
        ]
    );
    assert!(fake.auto_merges().is_empty());
    assert_eq!(fake.pulls().len(), 1);

    let (fake, _seed) = setup();
    fake.set_merge_settings(MergeSettings {
        clean: true,
        ..MergeSettings::default()
    });
    let r = stage_with_auto_merge(&fake);
    r.assert_ok();
    assert_eq!(r.out("pull-request-number"), "1");
    assert_eq!(
        notices(&r),
        [
            "::notice::auto-merge not enabled on pull request #1: it can be merged right now (GitHub calls this \"clean status\" and enables auto-merge only on pull requests that wait for checks or reviews); merge it, or protect the branch with required checks"
        ]
    );
    assert!(!fake.pulls()[0].auto_merge);
}
