//! The local backend's compare-and-swap and work-tree behaviour.

mod support;

use gitops_flow::error::Error;
use gitops_flow::repo::local::LocalRepo;
use gitops_flow::repo::{CommitRequest, FileChange, Git, RefUpdate};
use support::{git, refs, rev, scratch};

#[test]
fn ref_updates_are_compare_and_swap_and_all_or_nothing() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let repo = LocalRepo::open(&dir, 1_700_000_000).unwrap();
    let main = rev(&dir, "main");
    let initial = rev(&dir, "payments-staging");
    // Succeeds with the right expected values.
    repo.update_refs(
        &[
            RefUpdate {
                name: "refs/tags/payments-staging".into(),
                expected: Some(initial.clone()),
                new: main.clone(),
            },
            RefUpdate {
                name: "refs/tags/payments-staging-rollback".into(),
                expected: None,
                new: initial.clone(),
            },
        ],
        "test",
    )
    .unwrap();
    assert_eq!(rev(&dir, "payments-staging"), main);
    assert_eq!(rev(&dir, "payments-staging-rollback"), initial);
    // Loses to a concurrent change: one stale expectation, nothing moves.
    let before = refs(&dir);
    let err = repo
        .update_refs(
            &[
                RefUpdate {
                    name: "refs/tags/orders-staging".into(),
                    expected: Some(initial.clone()),
                    new: main.clone(),
                },
                RefUpdate {
                    name: "refs/tags/payments-staging".into(),
                    expected: Some(initial.clone()),
                    new: initial.clone(),
                },
            ],
            "test",
        )
        .unwrap_err();
    // The conflict names the refs and where they are now (the structure, not the text).
    let Error::Conflict(c) = &err else {
        panic!("not a conflict: {err}")
    };
    let payments = c
        .refs
        .iter()
        .find(|r| r.name == "refs/tags/payments-staging")
        .expect("payments-staging named");
    assert_eq!(payments.expected.as_deref(), Some(initial.as_str()));
    assert_eq!(payments.now.as_deref(), Some(main.as_str()), "where it is now");
    assert_eq!(refs(&dir), before, "all or nothing");
    // Creating a ref that already exists is a conflict too.
    let err = repo
        .update_refs(
            &[RefUpdate {
                name: "refs/tags/orders-staging".into(),
                expected: None,
                new: main.clone(),
            }],
            "t",
        )
        .unwrap_err();
    let Error::Conflict(c) = &err else {
        panic!("not a conflict: {err}")
    };
    assert_eq!(c.refs[0].expected, None, "expected absent");
    assert!(c.refs[0].now.is_some(), "but it exists");
}

#[test]
fn commits_on_the_checked_out_branch_keep_the_work_tree_clean() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let repo = LocalRepo::open(&dir, 1_700_000_000).unwrap();
    let main = rev(&dir, "main");
    let req = CommitRequest {
        branch: "main".into(),
        expected_head: Some(main.clone()),
        parent: main.clone(),
        message: "edit\n".into(),
        changes: vec![
            FileChange {
                path: "charts/payments/values.yaml".into(),
                content: b"replicaCount: 5\n".to_vec(),
            },
            FileChange {
                path: "charts/new/values.yaml".into(),
                content: b"a: 1\n".to_vec(),
            },
        ],
    };
    let c = repo.commit(&req).unwrap();
    assert_eq!(rev(&dir, "main"), c);
    assert_eq!(
        git(&dir, &["status", "--porcelain"]),
        "",
        "work tree and index follow the commit"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("charts/payments/values.yaml")).unwrap(),
        "replicaCount: 5\n"
    );
    assert_eq!(git(&dir, &["rev-parse", "HEAD^"]), main);
    // The same request again: main moved, the stale expected head loses.
    let err = repo.commit(&req).unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert_eq!(rev(&dir, "main"), c);
    // Uncommitted changes in a file it would touch: refused, nothing written.
    std::fs::write(dir.join("charts/payments/values.yaml"), "replicaCount: 7\n").unwrap();
    let req2 = CommitRequest {
        expected_head: Some(c.clone()),
        parent: c.clone(),
        ..req.clone()
    };
    let err = repo.commit(&req2).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(err.to_string().contains("uncommitted"), "{err}");
    assert_eq!(rev(&dir, "main"), c);
    assert_eq!(
        std::fs::read_to_string(dir.join("charts/payments/values.yaml")).unwrap(),
        "replicaCount: 7\n"
    );
}

#[test]
fn reads() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let repo = LocalRepo::open(&dir, 0).unwrap();
    let main = rev(&dir, "main");
    let first = rev(&dir, "payments-staging");
    assert!(repo.is_ancestor(&first, &main).unwrap());
    assert!(!repo.is_ancestor(&main, &first).unwrap());
    assert_eq!(repo.changed_paths(&main).unwrap(), ["README.md"]);
    assert_eq!(repo.default_branch().unwrap(), "main");
    let tags = repo.list_refs("refs/tags/payments").unwrap();
    assert_eq!(tags.len(), 2);
    let mut dir_list = repo.list_dir(&main, "charts").unwrap();
    dir_list.sort();
    assert_eq!(dir_list, ["orders", "payments"]);
    let h = repo.file_history(&main, "README.md", 10, &mut |_| false).unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].commit, main);
    assert_eq!(h[1].content.as_deref(), Some(&b"# acme/gitops\n"[..]));
    assert_eq!(
        repo.resolve_revision(&main[..8]).unwrap().as_deref(),
        Some(main.as_str())
    );
    assert_eq!(repo.resolve_revision("no-such-thing").unwrap(), None);
}

#[test]
fn direct_commits_never_write_through_symbolic_links() {
    let (t, dir) = scratch("make_tag_repo.sh");
    let outside = t.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("linked")).unwrap();
    git(&dir, &["add", "linked"]);
    git(&dir, &["commit", "-qm", "a link"]);
    let repo = LocalRepo::open(&dir, 0).unwrap();
    let main = rev(&dir, "main");
    let req = CommitRequest {
        branch: "main".into(),
        expected_head: Some(main.clone()),
        parent: main.clone(),
        message: "x\n".into(),
        changes: vec![FileChange {
            path: "linked/values.yaml".into(),
            content: b"a: 1\n".to_vec(),
        }],
    };
    let err = repo.commit(&req).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(rev(&dir, "main"), main);
    assert!(
        std::fs::read_dir(&outside).unwrap().next().is_none(),
        "nothing written outside"
    );
}

/// The histories of several paths walked together are each what one walk of the
/// path gives, whatever stops them (the limit, `enough`, the root commit).
#[test]
fn file_histories_together_are_each_files_own_history() {
    let (_t, dir, c) = support::interleaved_file_repo();
    let repo = LocalRepo::open(&dir, 0).unwrap();
    let head = rev(&dir, "main");
    let paths: Vec<String> = [
        "apps/dev/alpha/values.yaml",
        "apps/prod/alpha/values.yaml",
        "apps/dev/beta/values.yaml",
        "apps/prod/beta/values.yaml",
        "deep/nested/dir/dev/beta.yaml",
        "deep/nested/dir/prod/beta.yaml",
        "gamma-dev.yaml",
        "gamma-prod.yaml",
        "gamma-dev.yaml",
        "README.md",
        "no/such/file.yaml",
        "apps/dev",
        "gamma-dev.yaml/below",
        "deep//nested/dir/dev/beta.yaml",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let flat = |h: &[gitops_flow::repo::HistoryEntry]| -> Vec<(String, String, Option<Vec<u8>>)> {
        h.iter()
            .map(|e| (e.commit.clone(), e.message.clone(), e.content.clone()))
            .collect()
    };
    // Stops after the `stop`th entry of a path (0: never).
    for (limit, stop) in [(100, 0), (100, 1), (100, 2), (1, 0), (2, 0), (3, 2)] {
        let mut seen = vec![0usize; paths.len()];
        let together = repo
            .file_histories(&head, &paths, limit, &mut |i, _| {
                seen[i] += 1;
                seen[i] == stop
            })
            .unwrap();
        assert_eq!(together.len(), paths.len());
        for (i, p) in paths.iter().enumerate() {
            let mut n = 0usize;
            let alone = repo
                .file_history(&head, p, limit, &mut |_| {
                    n += 1;
                    n == stop
                })
                .unwrap();
            assert_eq!(flat(&together[i]), flat(&alone), "{p} (limit {limit}, stop {stop})");
        }
    }
    // And what one walk gives, pinned for the nested file.
    let h = repo
        .file_history(&head, "deep/nested/dir/dev/beta.yaml", 100, &mut |_| false)
        .unwrap();
    let commits: Vec<&str> = h.iter().map(|e| e.commit.as_str()).collect();
    assert_eq!(commits, [&c.touch_again, &c.beta_dev_nested, &c.root]);
}
