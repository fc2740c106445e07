//! `demo`: seed 1's "Detailed Example" on a throw-away local repository.

use std::collections::HashMap;

use super::{Ctx, Outcome, short};
use crate::actions::Runner;
use crate::cli::{Args, Event, Inputs};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::repo::local::{LocalRepo, git_err};
use crate::repo::{Git, RefUpdate};

const CHART: &str = "apiVersion: v2\nname: payments\ndescription: The payments service # demo chart\ntype: application\nversion: 0.1.0\n# the application version; gitops-flow stage edits only this value\nappVersion: \"1.0.0\"\n";
const ORDERS: &str = "apiVersion: v2\nname: orders\nversion: 0.1.0\nappVersion: '2.3.0'\n";

fn init_repo(dir: &std::path::Path, now: i64) -> Result<String> {
    let repo = gix::init_bare(dir).map_err(|e| Error::failed(format!("create demo repository: {e}")))?;
    let empty = gix::ObjectId::empty_tree(repo.object_hash());
    let mut editor = repo.edit_tree(empty).map_err(git_err("edit tree"))?;
    for (path, text) in [
        ("charts/payments/Chart.yaml", CHART),
        (
            "charts/payments/values.yaml",
            "replicaCount: 2\nimage:\n  repository: ghcr.io/acme/payments\n",
        ),
        ("charts/orders/Chart.yaml", ORDERS),
        ("README.md", "# acme/gitops (gitops-flow demo)\n"),
    ] {
        let blob = repo.write_blob(text).map_err(git_err("write blob"))?.detach();
        editor
            .upsert(path, gix::objs::tree::EntryKind::Blob, blob)
            .map_err(git_err("edit tree"))?;
    }
    let tree = editor.write().map_err(git_err("write tree"))?.detach();
    let sig = gix::actor::Signature {
        name: "demo".into(),
        email: "demo@example.com".into(),
        time: gix::date::Time::new(now, 0),
    };
    let commit = gix::objs::Commit {
        tree,
        parents: Default::default(),
        author: sig.clone(),
        committer: sig,
        encoding: None,
        message: "Initial state: payments 1.0.0\n".into(),
        extra_headers: Vec::new(),
    };
    let id = repo
        .write_object(&commit)
        .map_err(git_err("write commit"))?
        .detach()
        .to_hex()
        .to_string();
    let local = LocalRepo::open(dir, now)?;
    let mut updates = vec![RefUpdate {
        name: "refs/heads/main".into(),
        expected: None,
        new: id.clone(),
    }];
    for t in [
        "payments-staging",
        "payments-production",
        "orders-staging",
        "orders-production",
    ] {
        updates.push(RefUpdate {
            name: format!("refs/tags/{t}"),
            expected: None,
            new: id.clone(),
        });
    }
    local.update_refs(&updates, "demo: initial state")?;
    Ok(id)
}

fn show_tags(runner: &Runner, repo: &LocalRepo, title: &str) -> Result<()> {
    runner.info(&format!("\n== {title}"));
    let mut tags = repo.list_refs("refs/tags/payments")?;
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, t) in tags {
        let version = repo
            .read_file(&t.commit, "charts/payments/Chart.yaml")?
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|text| {
                crate::manifest::read(
                    &text,
                    &crate::manifest::Location::new("Chart.yaml", crate::manifest::LocationKind::ChartAppVersion),
                )
                .ok()
            })
            .unwrap_or_default();
        runner.info(&format!(
            "   {:<30} -> {}  (payments {version})",
            name.trim_start_matches("refs/tags/"),
            short(&t.commit)
        ));
    }
    Ok(())
}

fn step(runner: &Runner, repo: &LocalRepo, config: &Config, args: Args) -> Result<Outcome> {
    let env = HashMap::new();
    let event = Event::default();
    let inputs = Inputs::resolve(args, &env, &event)?;
    let ctx = Ctx {
        inputs: &inputs,
        config,
        repo,
        forge: &crate::repo::NoForge,
        event: &event,
        runner,
        branch: "main".into(),
        env: &env,
        now: 0,
    };
    super::run(&ctx)
}

/// Runs the walkthrough in a temporary directory (or `keep`, when given).
pub fn run(runner: &Runner, now: i64, keep: Option<&std::path::Path>) -> Result<Outcome> {
    let tmp = tempfile::tempdir().map_err(|e| Error::failed(format!("create a temporary directory: {e}")))?;
    let dir = keep.unwrap_or(tmp.path());
    runner.info(&format!(
        "gitops-flow demo: the tag-tracking flow on a throw-away repository at {}",
        dir.display()
    ));
    runner.info("Argo CD in staging watches tag payments-staging, production watches payments-production.");
    init_repo(dir, now)?;
    let repo = LocalRepo::open(dir, now)?;
    let config = Config::default();
    let path = Some(dir.display().to_string());
    let base = || Args {
        path: path.clone(),
        backend: Some("local".into()),
        ..Args::default()
    };
    show_tags(runner, &repo, "Initial state: both environments run the same revision")?;
    let payments = |command: &str| {
        let args = Args {
            command: Some(command.into()),
            service: Some("payments".into()),
            ..base()
        };
        step(runner, &repo, &config, args)
    };

    runner.info("\n$ gitops-flow stage --service payments --version 1.1.0");
    let staged = step(
        runner,
        &repo,
        &config,
        Args {
            command: Some("stage".into()),
            service: Some("payments".into()),
            version: Some("1.1.0".into()),
            ..base()
        },
    )?;
    runner.info(&format!(
        "   branch {} at {}: appVersion \"1.0.0\" -> \"1.1.0\"; pull request `Stage payments 1.1.0` (reported, not opened locally)",
        staged.branch.clone().unwrap_or_default(),
        staged.commit.as_deref().map(short).unwrap_or_default()
    ));

    runner.info("\n$ (the pull request is merged: main fast-forwards to the stage branch)");
    let refs = repo.resolve_refs(&["refs/heads/main".into(), "refs/heads/gitops-flow/stage/payments".into()])?;
    let (main, stage) = match (&refs[0], &refs[1]) {
        (Some(m), Some(s)) => (m.clone(), s.clone()),
        _ => return Err(Error::failed("demo: stage branch missing after stage")),
    };
    repo.update_refs(
        &[RefUpdate {
            name: "refs/heads/main".into(),
            expected: Some(main.target),
            new: stage.commit.clone(),
        }],
        "demo: merge",
    )?;

    runner.info("\n$ gitops-flow deploy   # on pull_request closed+merged: services come from the merged change");
    step(
        runner,
        &repo,
        &config,
        Args {
            command: Some("deploy".into()),
            ..base()
        },
    )?;
    show_tags(
        runner,
        &repo,
        "Staging deployment: payments-staging moved to the merged revision",
    )?;

    runner.info("\n$ gitops-flow promote --service payments   # staging -> production");
    payments("promote")?;
    show_tags(
        runner,
        &repo,
        "Promote to production: production moved, its rollback tag keeps the old revision",
    )?;

    runner.info("\n$ gitops-flow promote --service payments   # again: nothing changes, the rollback point is kept");
    let again = payments("promote")?;
    runner.info(&format!("   changed={}", again.changed));

    runner.info("\n$ gitops-flow rollback --service payments   # production -> the rollback tag's revision");
    let rb = payments("rollback")?;
    show_tags(
        runner,
        &repo,
        "Rollback: production is back where the rollback tag points",
    )?;
    runner.info(&format!(
        "\n   previous-revision={} (pass it as `revision` to roll forward again)",
        rb.previous_revision.as_deref().map(short).unwrap_or_default()
    ));
    let report = step(
        runner,
        &repo,
        &config,
        Args {
            command: Some("report".into()),
            ..base()
        },
    )?;
    let mut out = Outcome {
        changed: true,
        service: Some("payments".into()),
        report: report.report,
        ..Outcome::default()
    };
    out.summary = format!(
        "### gitops-flow demo\n\nThe tag flow ran end to end on a throw-away repository.\n\n{}",
        report.summary.replace("### gitops-flow report\n\n", "")
    );
    Ok(out)
}
