//! Branch-tracked environments: the environment runs its own branch; a move is a
//! fast-forward or a pull request between branches.

use super::{EnvTrack, Moved, StageTarget};
use crate::commands::rollback::Target;
use crate::commands::{Ctx, Outcome, short};
use crate::config::Config;
use crate::config::{Environment, Track};
use crate::error::{Error, Result};
use std::collections::HashMap;

use serde_json::{Value, json};

use crate::commands::state::{Depth, EnvState};
use crate::repo::ReadPlan;
use crate::repo::{FileChange, Oid, Proposal, PullRequestSpec, RefUpdate, trailers};

/// The branch track.
pub struct Branch;

impl EnvTrack for Branch {
    fn state(&self, ctx: &Ctx<'_>, env: &Environment, service: &str, _main: &Oid, depth: Depth) -> Result<EnvState> {
        let branch = env.branch.clone().unwrap_or_default();
        let head = ctx.repo.resolve_ref(&format!("refs/heads/{branch}"))?.map(|r| r.commit);
        EnvState::of_branch(ctx, env, service, head, depth)
    }

    /// Every service: they all move with the branch.
    fn moved_services(&self, config: &Config, service: &str) -> Vec<String> {
        let mut services = vec![service.to_string()];
        for s in config.services.keys() {
            if !services.contains(s) {
                services.push(s.clone());
            }
        }
        services
    }

    fn plan(&self, config: &Config, env: &Environment, service: &str, plan: &mut ReadPlan) {
        if let Some(b) = &env.branch {
            plan.refs.push(format!("refs/heads/{b}"));
            plan.file_refs.push(format!("refs/heads/{b}"));
            for l in config.locations(env, service).unwrap_or_default() {
                super::add_file(plan, l.file);
            }
        }
    }

    fn stage_target(&self, ctx: &Ctx<'_>, _env: &Environment, service: &str) -> Result<StageTarget> {
        super::chart_stage(ctx, service)
    }

    fn moved(&self, out: &Outcome) -> Moved {
        Moved::Revision(out.revision.clone())
    }

    fn promote(&self, ctx: &Ctx<'_>, p: &super::Promotion<'_>, mut out: Outcome) -> Result<Outcome> {
        out.branch = p.to.branch.clone();
        promote_branch(ctx, p.from, p.to, out)
    }

    fn report(&self, ctx: &Ctx<'_>, cells: &[(&Environment, &str)], _main_head: &Oid) -> Result<Vec<Value>> {
        // Each branch's head, read once for all its cells.
        let mut names: Vec<String> = Vec::new();
        for (env, _) in cells {
            let name = format!("refs/heads/{}", env.branch.clone().unwrap_or_default());
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let heads: HashMap<String, Option<Oid>> = names
            .iter()
            .cloned()
            .zip(ctx.repo.resolve_refs(&names)?.into_iter().map(|t| t.map(|t| t.commit)))
            .collect();
        cells
            .iter()
            .map(|(env, service)| {
                let b = env.branch.clone().unwrap_or_default();
                let Some(h) = heads.get(&format!("refs/heads/{b}")).cloned().flatten() else {
                    return Ok(json!({"track": "branch", "branch": b, "error": "branch not found"}));
                };
                Ok(
                    match EnvState::of_branch(ctx, env, service, Some(h.clone()), Depth::Version)?.version {
                        Ok(ver) => json!({"track": "branch", "branch": b, "version": ver, "revision": h}),
                        Err(e) => json!({"track": "branch", "branch": b, "revision": h, "error": e.to_string()}),
                    },
                )
            })
            .collect()
    }

    fn deploy(&self, ctx: &Ctx<'_>, env: &Environment, merged: &super::Merged, out: Outcome) -> Result<Outcome> {
        super::merge_deployed(ctx, env, merged, out)
    }

    fn roll_back(
        &self,
        ctx: &Ctx<'_>,
        _service: &str,
        env: &Environment,
        _to: &Target,
        _main_head: &Oid,
        out: Outcome,
    ) -> Result<Outcome> {
        rollback_branch(ctx, env, out)
    }
}

fn promote_branch(ctx: &Ctx<'_>, from: &Environment, to: &Environment, mut out: Outcome) -> Result<Outcome> {
    let from_branch = match from.track {
        Track::Branch => from.branch.clone().unwrap_or_default(),
        _ => ctx.branch.clone(),
    };
    let to_branch = to.branch.clone().unwrap_or_default();
    let refs = ctx
        .repo
        .resolve_refs(&[format!("refs/heads/{from_branch}"), format!("refs/heads/{to_branch}")])?;
    let src = refs[0].clone().ok_or_else(|| {
        Error::input(format!(
            "branch `{from_branch}` of `{}` not found; create it first",
            from.name
        ))
    })?;
    let dst = refs[1].clone().ok_or_else(|| {
        Error::input(format!(
            "branch `{to_branch}` of `{}` not found; create it first",
            to.name
        ))
    })?;
    out.revision = Some(src.commit.clone());
    out.previous_revision = Some(dst.commit.clone());
    if ctx.repo.is_ancestor(&src.commit, &dst.commit)? {
        ctx.runner.notice(&format!(
            "`{to_branch}` already contains `{from_branch}`; nothing to promote"
        ));
        return Ok(out);
    }
    if to.direct && ctx.repo.is_ancestor(&dst.commit, &src.commit)? {
        if !ctx.inputs.dry_run {
            let services = Branch.moved_services(ctx.config, ctx.inputs.service.as_deref().unwrap_or_default());
            let services: Vec<&str> = services.iter().map(String::as_str).collect();
            ctx.update_refs_unless_held(
                &[RefUpdate {
                    name: format!("refs/heads/{to_branch}"),
                    expected: Some(dst.target.clone()),
                    new: src.commit.clone(),
                }],
                &format!("gitops-flow promote {} fast-forward", to.name),
                to,
                &services,
            )?;
        }
        out.changed = true;
        out.summary = format!(
            "### gitops-flow promote\n\n`{to_branch}` fast-forwarded {} → {}\n",
            ctx.link_commit(&dst.commit),
            ctx.link_commit(&src.commit)
        );
        return Ok(out);
    }
    let spec = PullRequestSpec {
        head: from_branch.clone(),
        base: to_branch.clone(),
        title: format!("Promote {} to {}", from.name, to.name),
        body: format!(
            "Promotes `{from_branch}` ({}) into `{to_branch}`.\n",
            short(&src.commit)
        ),
        labels: ctx.inputs.labels.clone(),
        auto_merge: ctx.inputs.auto_merge || to.auto_merge,
    };
    let pr = if ctx.inputs.dry_run {
        Proposal::reported(&spec)
    } else {
        ctx.forge.propose(&spec)?
    };
    out.changed = pr.created();
    out.pull_request_number = pr.number();
    out.pull_request_url = pr.url().map(String::from);
    out.summary = format!(
        "### gitops-flow promote\n\npull request `{from_branch}` → `{to_branch}` {}\n",
        pr.url()
            .unwrap_or("(reported, not opened by gitops-flow: no forge API on this backend)")
    );
    Ok(out)
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
