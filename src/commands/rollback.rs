//! `rollback`: put an environment of a service back.

use super::state::{Depth, EnvState, RollbackPoint};
use super::{Ctx, Outcome, short};
use crate::cli::RollbackVia;
use crate::config::{Environment, Track};
use crate::error::{Error, Result};
use crate::repo::{FileChange, Oid, PullRequestSpec, RefUpdate, trailer, trailers};

pub fn run(ctx: &Ctx<'_>) -> Result<Outcome> {
    let service = ctx.require_service()?;
    let env = ctx
        .env_or(ctx.inputs.environment.as_ref(), ctx.config.last_env())?
        .clone();
    let to = Target {
        revision: ctx.inputs.revision.clone(),
        version: ctx.inputs.version.clone(),
    };
    rollback(ctx, &service, &env, &to)
}

/// Where to roll back to: a revision (tag mode) or version (file mode) given by
/// the user; empty for the rollback point (the gate's rollback-on-failure).
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub revision: Option<String>,
    pub version: Option<String>,
}

/// Rolls `service` back in `env`.
pub fn rollback(ctx: &Ctx<'_>, service: &str, env: &Environment, to: &Target) -> Result<Outcome> {
    ctx.prefetch(service, &[env])?;
    let main_head = ctx.main_head()?;
    let out = Outcome {
        service: Some(service.to_string()),
        environment: Some(env.name.clone()),
        ..Outcome::default()
    };
    match env.track {
        Track::Tag => rollback_tag(ctx, service, env, &main_head, to, out),
        Track::File => rollback_file(ctx, service, env, to, out),
        Track::Branch => rollback_branch(ctx, env, out),
    }
}

fn rollback_tag(
    ctx: &Ctx<'_>,
    service: &str,
    env: &Environment,
    main_head: &Oid,
    to: &Target,
    mut out: Outcome,
) -> Result<Outcome> {
    let tag = ctx.config.tag(env, service)?;
    let rb = ctx.config.rollback_tag(env, service)?;
    let refs = ctx
        .repo
        .resolve_refs(&[format!("refs/tags/{tag}"), format!("refs/tags/{rb}")])?;
    let cur = refs[0].clone().ok_or_else(|| {
        Error::input(format!(
            "tag `{tag}` not found in {}; {service} was never deployed to `{}`",
            ctx.repo.describe(),
            env.name
        ))
    })?;
    let target = match &to.revision {
        Some(rev) => ctx.resolve_deployable(rev, main_head)?,
        None => refs[1].clone().map(|r| r.commit).ok_or_else(|| {
            Error::input(format!(
                "no rollback tag `{rb}` in {} and no `revision` given; pass `revision` to say where to roll back to",
                ctx.repo.describe()
            ))
        })?,
    };
    out.tag = Some(tag.clone());
    out.revision = Some(target.clone());
    out.previous_revision = Some(cur.commit.clone());
    out.rollback_revision = refs[1].clone().map(|r| r.commit);
    out.version = ctx.chart_version(service, &target).ok();
    out.previous_version = ctx.chart_version(service, &cur.commit).ok();
    if cur.commit == target {
        ctx.runner.notice(&format!(
            "`{tag}` already points at {}; nothing to roll back",
            short(&target)
        ));
        out.summary = format!(
            "### gitops-flow rollback\n\n`{tag}` already at {}: nothing to do.\n",
            ctx.link_commit(&target)
        );
        return Ok(out);
    }
    if !ctx.inputs.dry_run {
        let update = RefUpdate {
            name: format!("refs/tags/{tag}"),
            expected: Some(cur.target.clone()),
            new: target.clone(),
        };
        match ctx
            .repo
            .update_refs(&[update], &format!("gitops-flow rollback {}", env.name))
        {
            Ok(()) => {}
            Err(Error::Conflict(msg)) => {
                let now = ctx.repo.resolve_ref(&format!("refs/tags/{tag}"))?;
                if now.as_ref().map(|r| &r.commit) != Some(&target) {
                    return Err(Error::Conflict(msg));
                }
                // Another run made this very rollback first: this one wrote nothing.
                ctx.runner.notice(&format!(
                    "another run rolled `{tag}` back to {} first; nothing changed by this run",
                    short(&target)
                ));
                out.previous_revision = Some(target.clone());
                out.previous_version = out.version.clone();
                out.summary = format!(
                    "### gitops-flow rollback\n\n`{tag}` already at {}: nothing to do.\n",
                    ctx.link_commit(&target)
                );
                return Ok(out);
            }
            Err(e) => return Err(e),
        }
    }
    out.changed = true;
    out.summary = format!(
        "### gitops-flow rollback `{service}` in `{}`\n\n`{tag}`: {} → {} (`previous-revision` rolls forward again)\n",
        env.name,
        ctx.link_commit(&cur.commit),
        ctx.link_commit(&target)
    );
    Ok(out)
}

fn rollback_file(ctx: &Ctx<'_>, service: &str, env: &Environment, to: &Target, mut out: Outcome) -> Result<Outcome> {
    let main_head = ctx.main_head()?;
    let locations = ctx.config.locations(env, service)?;
    // The history (for the rollback point) only when no version is given.
    let depth = if to.version.is_some() {
        Depth::Version
    } else {
        Depth::Full
    };
    let state = EnvState::read(ctx, env, service, &main_head, depth)?;
    let now = state.version?.unwrap_or_default();
    out.previous_version = Some(now.clone());
    let target = match &to.version {
        Some(v) => v.clone(),
        None => {
            // A value last set by a rollback of this service is not rolled back again
            // (as in tag mode) — also when a merged rollback pull request hid the trailers.
            if let Some(last) = &state.changed_by
                && rolled_back_by(ctx, last, service)?
            {
                ctx.runner.notice(&format!(
                    "{service} in `{}` was last changed by a rollback ({}); nothing to do. Pass `version` to choose one",
                    env.name,
                    short(&last.commit)
                ));
                out.version = Some(now);
                return Ok(out);
            }
            match state.rollback {
                Some(RollbackPoint {
                    revision,
                    version: Some(v),
                }) => {
                    out.rollback_revision = Some(revision);
                    v
                }
                _ => {
                    return Err(Error::input(format!(
                        "no earlier version of {service} in the history of {} on `{}`; pass `version` to say what to roll back to",
                        locations[0].file, ctx.branch
                    )));
                }
            }
        }
    };
    out.version = Some(target.clone());
    if target == now {
        ctx.runner.notice(&format!(
            "{service} already runs {target} in `{}`; nothing to roll back",
            env.name
        ));
        return Ok(out);
    }
    let message = format!(
        "Roll back {service} in {} to {target}\n\n{now} -> {target}\n\n{}",
        env.name,
        trailers("rollback", service, Some(&env.name), Some(&target))
    );
    if ctx.inputs.rollback_via == RollbackVia::PullRequest {
        let (changes, _) = ctx.edit_locations(&main_head, &locations, &target)?;
        let branch = format!("gitops-flow/rollback/{}/{service}", env.name);
        let spec = PullRequestSpec {
            head: branch.clone(),
            base: ctx.branch.clone(),
            title: format!("Roll back {service} in {} to {target}", env.name),
            body: format!(
                "Rolls `{service}` back in `{}`: `{now}` → `{target}`.\n\n{}\n",
                env.name,
                super::Meta {
                    command: "rollback".into(),
                    service: service.to_string(),
                    environment: Some(env.name.clone()),
                    from: None,
                    version: Some(target.clone()),
                }
                .render()
            ),
            labels: ctx.inputs.labels.clone(),
            auto_merge: ctx.inputs.auto_merge,
        };
        let p = ctx.propose(&branch, &main_head, changes, &message, spec)?;
        p.fill(&mut out);
        out.changed = p.changed;
        out.summary = format!(
            "### gitops-flow rollback `{service}` in `{}`\n\n`{now}` → `{target}`: {}\n",
            env.name,
            p.summary_line()
        );
        return Ok(out);
    }
    if let Some((commit, _)) =
        ctx.commit_direct(&message, |head| Ok(ctx.edit_locations(head, &locations, &target)?.0))?
    {
        out.changed = true;
        out.commit = Some(commit).filter(|c| !c.is_empty());
        out.revision = out.commit.clone();
        out.branch = Some(ctx.branch.clone());
    }
    out.summary = format!(
        "### gitops-flow rollback `{service}` in `{}`\n\n`{now}` → `{target}`, committed {}\n",
        env.name,
        out.commit
            .as_deref()
            .map(|c| ctx.link_commit(c))
            .unwrap_or_else(|| "(dry run)".into())
    );
    Ok(out)
}

/// Whether `entry` (a change on the main branch) was a rollback of `service`: its
/// trailers, else the metadata of a squash message or of the merged pull request.
fn rolled_back_by(ctx: &Ctx<'_>, entry: &crate::repo::HistoryEntry, service: &str) -> Result<bool> {
    if let Some(cmd) = trailer(&entry.message, "Gitops-Flow-Command") {
        let svc = trailer(&entry.message, "Gitops-Flow-Service");
        return Ok(cmd == "rollback" && svc.is_none_or(|s| s == service || s == "*"));
    }
    let meta = match super::Meta::parse(&entry.message) {
        Some(m) => Some(m),
        None => ctx.merged_meta(&entry.commit)?,
    };
    Ok(meta.is_some_and(|m| m.command == "rollback" && m.service == service))
}

fn rollback_branch(ctx: &Ctx<'_>, env: &Environment, mut out: Outcome) -> Result<Outcome> {
    let branch = env.branch.clone().unwrap_or_default();
    let head = ctx
        .repo
        .resolve_ref(&format!("refs/heads/{branch}"))?
        .ok_or_else(|| Error::input(format!("branch `{branch}` not found")))?;
    let last = ctx.repo.changed_paths(&head.commit)?;
    let parent = ctx
        .repo
        .first_parent(&head.commit)?
        .ok_or_else(|| Error::input(format!("`{branch}` has no earlier revision to roll back to")))?;
    let mut changes = Vec::new();
    for p in &last {
        match ctx.repo.read_file(&parent, p)? {
            Some(content) => changes.push(FileChange {
                path: p.clone(),
                content,
            }),
            None => {
                return Err(Error::input(format!(
                    "the last promotion on `{branch}` added {p}; gitops-flow restores changed files only, revert {} by hand",
                    short(&head.commit)
                )));
            }
        }
    }
    out.previous_revision = Some(head.commit.clone());
    out.rollback_revision = Some(parent.clone());
    out.branch = Some(branch.clone());
    if changes.is_empty() {
        ctx.runner.notice(&format!(
            "the last commit on `{branch}` changed no files; nothing to roll back"
        ));
        return Ok(out);
    }
    if !ctx.inputs.dry_run {
        let req = crate::repo::CommitRequest {
            branch: branch.clone(),
            expected_head: Some(head.target.clone()),
            parent: head.commit.clone(),
            message: format!(
                "Roll back {} to {}\n\n{}",
                env.name,
                short(&parent),
                trailers("rollback", "*", Some(&env.name), None)
            ),
            changes,
        };
        let c = ctx.repo.commit(&req)?;
        out.commit = Some(c.clone());
        out.revision = Some(c);
    }
    out.changed = true;
    out.summary = format!(
        "### gitops-flow rollback `{}`\n\n`{branch}` restored to the tree of {}\n",
        env.name,
        ctx.link_commit(&parent)
    );
    Ok(out)
}
