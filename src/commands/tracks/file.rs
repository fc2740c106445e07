//! File-tracked environments: the environment runs what a version field on the main
//! branch says; a move is a commit (direct) or a pull request.

use super::{EnvTrack, Moved, StageTarget};
use crate::cli::RollbackVia;
use crate::commands::rollback::Target;
use serde_json::{Value, json};

use crate::commands::state::{Depth, EnvState, RollbackPoint, Source};
use crate::commands::{Ctx, Meta, Outcome, short};
use crate::config::Config;
use crate::config::{Environment, Track};
use crate::error::{Error, Result};
use crate::repo::ReadPlan;
use crate::repo::{Oid, PullRequestSpec, trailer, trailers};

/// The file track.
pub struct File;

impl EnvTrack for File {
    fn state(&self, ctx: &Ctx<'_>, env: &Environment, service: &str, main: &Oid, depth: Depth) -> Result<EnvState> {
        EnvState::of_file(ctx, env, service, main, depth)
    }

    fn plan(&self, _config: &Config, env: &Environment, service: &str, plan: &mut ReadPlan) {
        plan.refs.push(format!("refs/heads/gitops-flow/{}/{service}", env.name));
    }

    fn stage_target(&self, ctx: &Ctx<'_>, env: &Environment, service: &str) -> Result<StageTarget> {
        Ok(StageTarget {
            locations: ctx.config.locations(env, service)?,
            branch: format!("gitops-flow/{}/{service}", env.name),
            environment: Some(env.name.clone()),
            direct: env.direct,
            auto_merge: env.auto_merge,
        })
    }

    fn deployed_by_push(&self) -> bool {
        true
    }

    fn moved(&self, out: &Outcome) -> Moved {
        if out.pull_request_number.is_some() || (out.commit.is_none() && out.changed) {
            Moved::Pending
        } else {
            Moved::Revision(out.commit.clone().or(out.revision.clone()))
        }
    }

    fn promote(&self, ctx: &Ctx<'_>, p: &super::Promotion<'_>, mut out: Outcome) -> Result<Outcome> {
        let (service, from) = (p.service, p.from);
        let src = EnvState::read(ctx, from, service, p.main_head, Depth::Version)?;
        let version = match from.track {
            // A branch without the version file runs no version of the service.
            Track::Branch => src.version.ok().flatten(),
            Track::Tag | Track::File => src.version?,
        }
        .ok_or_else(|| {
            Error::input(format!(
                "{service} has no version in `{}` yet; deploy it there first",
                from.name
            ))
        })?;
        out.version = Some(version.clone());
        promote_file(ctx, service, from, p.to, &version, p.main_head, out)
    }

    fn report(&self, ctx: &Ctx<'_>, cells: &[(&Environment, &str)], main_head: &Oid) -> Result<Vec<Value>> {
        // Every cell's history walked together: its revision is the last change of its value.
        let states = EnvState::of_files(ctx, cells, main_head)?;
        Ok(states
            .into_iter()
            .map(|state| {
                let file = match &state.source {
                    Source::File { files } => files.first().cloned(),
                    _ => None,
                };
                match state.version {
                    Ok(ver) => json!({"track": "file", "file": file, "version": ver, "revision": state.revision}),
                    Err(e) => json!({"track": "file", "file": file, "error": e.to_string()}),
                }
            })
            .collect())
    }

    fn deploy(&self, ctx: &Ctx<'_>, env: &Environment, merged: &super::Merged, out: Outcome) -> Result<Outcome> {
        super::merge_deployed(ctx, env, merged, out)
    }

    fn roll_back(
        &self,
        ctx: &Ctx<'_>,
        service: &str,
        env: &Environment,
        to: &Target,
        _main_head: &Oid,
        out: Outcome,
    ) -> Result<Outcome> {
        rollback_file(ctx, service, env, to, out)
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn promote_file(
    ctx: &Ctx<'_>,
    service: &str,
    from: &Environment,
    to: &Environment,
    version: &str,
    main_head: &Oid,
    mut out: Outcome,
) -> Result<Outcome> {
    let locations = ctx.config.locations(to, service)?;
    let (changes, old) = ctx.edit_locations(main_head, &locations, version)?;
    out.previous_version = Some(old.clone());
    if changes.is_empty() {
        ctx.runner.notice(&format!(
            "{service} already runs {version} in `{}`; nothing to promote",
            to.name
        ));
        out.summary = format!(
            "### gitops-flow promote\n\n`{service}` already runs `{version}` in `{}`.\n",
            to.name
        );
        return Ok(out);
    }
    let message = format!(
        "Promote {service} {version} to {}\n\nfrom {}: {old} -> {version}\n\n{}",
        to.name,
        from.name,
        trailers("promote", service, Some(&to.name), Some(version))
    );
    if to.direct {
        if let Some((commit, _)) = ctx.commit_direct(&message, |head| {
            ctx.check_holds(head, &[service], to)?;
            Ok(ctx.edit_locations(head, &locations, version)?.0)
        })? {
            out.changed = true;
            out.commit = Some(commit.clone()).filter(|c| !c.is_empty());
            out.revision = out.commit.clone();
            out.branch = Some(ctx.branch.clone());
            out.summary = format!(
                "### gitops-flow promote `{service}`: `{}` → `{}`\n\n`{old}` → `{version}`, committed {}\n",
                from.name,
                to.name,
                out.commit
                    .as_deref()
                    .map(|c| ctx.link_commit(c))
                    .unwrap_or_else(|| "(dry run)".into())
            );
        } else {
            // Another run committed this very change first.
            ctx.runner.notice(&format!(
                "{service} already runs {version} in `{}`; nothing to promote",
                to.name
            ));
        }
        return Ok(out);
    }
    let branch = format!("gitops-flow/{}/{service}", to.name);
    let meta = Meta {
        command: "promote".into(),
        service: service.to_string(),
        environment: Some(to.name.clone()),
        from: Some(from.name.clone()),
        version: Some(version.to_string()),
    };
    let spec = PullRequestSpec {
        head: branch.clone(),
        base: ctx.branch.clone(),
        title: format!("Promote {service} {version} to {}", to.name),
        body: format!(
            "Promotes `{service}` from `{}` to `{}`: `{old}` → `{version}`.\n\n{}\n",
            from.name,
            to.name,
            meta.render()
        ),
        labels: ctx.inputs.labels.clone(),
        auto_merge: ctx.inputs.auto_merge || to.auto_merge,
    };
    let p = ctx.propose(&branch, main_head, changes, &message, spec)?;
    p.fill(&mut out);
    out.changed = p.changed;
    out.summary = format!(
        "### gitops-flow promote `{service}`: `{}` → `{}`\n\n`{old}` → `{version}`: {}\n",
        from.name,
        to.name,
        p.summary_line()
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
                Meta {
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
    let meta = match Meta::parse(&entry.message) {
        Some(m) => Some(m),
        None => ctx.merged_meta(&entry.commit)?,
    };
    Ok(meta.is_some_and(|m| m.command == "rollback" && m.service == service))
}
