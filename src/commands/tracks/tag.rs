//! Tag-tracked environments: the environment runs what the tag `{service}-{env}`
//! points at; a move is a tag move (the rollback tag keeps where it was).

use super::{EnvTrack, Moved, StageTarget};
use crate::commands::rollback::Target;
use crate::commands::{Ctx, Meta, Outcome, short};
use crate::config::Config;
use crate::config::Environment;
use crate::error::{Error, Result};
use std::collections::HashMap;

use serde_json::{Value, json};

use crate::commands::state::{Depth, EnvState};
use crate::repo::ReadPlan;
use crate::repo::{Oid, RefTarget, RefUpdate};

/// The tag track.
pub struct Tag;

impl EnvTrack for Tag {
    fn state(&self, ctx: &Ctx<'_>, env: &Environment, service: &str, _main: &Oid, depth: Depth) -> Result<EnvState> {
        let tag = ctx.config.tag(env, service)?;
        let rollback_tag = ctx.config.rollback_tag(env, service)?;
        let refs = ctx
            .repo
            .resolve_refs(&[format!("refs/tags/{tag}"), format!("refs/tags/{rollback_tag}")])?;
        Ok(EnvState::of_tag(
            ctx,
            service,
            tag,
            rollback_tag,
            refs[0].as_ref(),
            refs[1].as_ref(),
            depth,
        ))
    }

    fn plan(&self, config: &Config, env: &Environment, service: &str, plan: &mut ReadPlan) {
        if let (Ok(t), Ok(r)) = (config.tag(env, service), config.rollback_tag(env, service)) {
            for name in [format!("refs/tags/{t}"), format!("refs/tags/{r}")] {
                plan.refs.push(name.clone());
                plan.file_refs.push(name.clone());
                plan.on_main.push(name);
            }
            if let Ok(chart) = config.chart_dir(service) {
                super::add_file(plan, format!("{chart}/Chart.yaml"));
            }
        }
    }

    fn stage_target(&self, ctx: &Ctx<'_>, _env: &Environment, service: &str) -> Result<StageTarget> {
        super::chart_stage(ctx, service)
    }

    fn moved(&self, out: &Outcome) -> Moved {
        Moved::Revision(out.revision.clone())
    }

    /// The commit the tag went back to (a tag names a commit, not a version).
    fn rolled_back_to(&self, out: &Outcome) -> Option<String> {
        out.revision.as_deref().map(|r| short(r).to_string())
    }

    fn promote(&self, ctx: &Ctx<'_>, p: &super::Promotion<'_>, out: Outcome) -> Result<Outcome> {
        promote_tag(ctx, p.service, p.from, p.to, p.main_head, out)
    }

    fn report(&self, ctx: &Ctx<'_>, cells: &[(&Environment, &str)], _main_head: &Oid) -> Result<Vec<Value>> {
        let tags: HashMap<String, RefTarget> = ctx.repo.list_refs("refs/tags/")?.into_iter().collect();
        // Every chart the cells read, in one batch (250 a request on GitHub).
        let reads: Vec<(Oid, String)> = cells
            .iter()
            .filter_map(|(env, service)| {
                let (tag, chart) = (ctx.config.tag(env, service).ok()?, ctx.config.chart_dir(service).ok()?);
                let t = tags.get(&format!("refs/tags/{tag}"))?;
                Some((t.commit.clone(), format!("{chart}/Chart.yaml")))
            })
            .collect();
        ctx.repo.read_files(&reads)?;
        cells
            .iter()
            .map(|(env, service)| {
                let tag = ctx.config.tag(env, service)?;
                let rb = ctx.config.rollback_tag(env, service)?;
                let t = tags.get(&format!("refs/tags/{tag}"));
                let r = tags.get(&format!("refs/tags/{rb}"));
                let state = EnvState::of_tag(ctx, service, tag.clone(), rb, t, r, Depth::Version);
                Ok(match &state.revision {
                    None => json!({"track": "tag", "tag": tag, "missing": true}),
                    Some(rev) => {
                        let mut v = json!({"track": "tag", "tag": tag, "revision": rev, "rollback-revision": state.rollback.as_ref().map(|r| r.revision.clone())});
                        match state.version {
                            Ok(ver) => v["version"] = json!(ver),
                            Err(e) => v["error"] = json!(e.to_string()),
                        }
                        v
                    }
                })
            })
            .collect()
    }

    fn deploy(&self, ctx: &Ctx<'_>, env: &Environment, merged: &super::Merged, mut out: Outcome) -> Result<Outcome> {
        let services = affected_services(ctx, &merged.revision, merged.meta.clone())?;
        if services.is_empty() {
            ctx.runner.notice(&format!(
                "commit {} changes no service's chart; nothing to deploy",
                short(&merged.revision)
            ));
            out.summary = format!(
                "### gitops-flow deploy\n\nCommit {} changes no service: nothing to deploy.\n",
                ctx.link_commit(&merged.revision)
            );
            return Ok(out);
        }
        let moves: Vec<(String, Oid)> = services.iter().map(|s| (s.clone(), merged.revision.clone())).collect();
        let results = ctx.move_tags(env, &moves, "deploy", true)?;
        let mut summary = format!(
            "### gitops-flow deploy to `{}`\n\n| service | tag | from | to |\n|---|---|---|---|\n",
            env.name
        );
        for m in &results {
            summary.push_str(&format!(
                "| `{}` | `{}` | {} | {}{} |\n",
                m.service,
                m.tag,
                ctx.link_or(m.previous.as_deref(), "(new)"),
                ctx.link_commit(&m.new),
                if m.changed { "" } else { " (unchanged)" }
            ));
        }
        out.changed = results.iter().any(|m| m.changed);
        if let [m] = results.as_slice() {
            out.service = Some(m.service.clone());
            out.tag = Some(m.tag.clone());
            out.previous_revision = m.previous.clone();
            out.rollback_revision = m.rollback.clone();
            out.version = ctx.chart_version(&m.service, &merged.revision).ok();
        } else {
            out.service = Some(services.join(","));
        }
        out.summary = summary;
        Ok(out)
    }

    fn roll_back(
        &self,
        ctx: &Ctx<'_>,
        service: &str,
        env: &Environment,
        to: &Target,
        main_head: &Oid,
        out: Outcome,
    ) -> Result<Outcome> {
        rollback_tag(ctx, service, env, main_head, to, out)
    }
}

fn promote_tag(
    ctx: &Ctx<'_>,
    service: &str,
    from: &Environment,
    to: &Environment,
    main_head: &Oid,
    mut out: Outcome,
) -> Result<Outcome> {
    let from_tag = ctx.config.tag(from, service)?;
    let src = ctx.repo.resolve_ref(&format!("refs/tags/{from_tag}"))?.ok_or_else(|| {
        Error::input(format!(
            "tag `{from_tag}` not found in {}; run `deploy` for {service} first or pass `from`",
            ctx.repo.describe()
        ))
    })?;
    ctx.check_on_main(&src.commit, main_head)?;
    let moves = ctx.move_tags(to, &[(service.to_string(), src.commit.clone())], "promote", true)?;
    let m = &moves[0];
    out.tag = Some(m.tag.clone());
    out.revision = Some(m.new.clone());
    out.previous_revision = m.previous.clone();
    out.rollback_revision = m.rollback.clone();
    out.changed = m.changed;
    out.version = ctx.chart_version(service, &m.new).ok();
    out.previous_version = m.previous.as_ref().and_then(|p| ctx.chart_version(service, p).ok());
    if !m.changed {
        ctx.runner.notice(&format!(
            "`{}` already points at {}; nothing to promote (rollback point kept)",
            m.tag,
            short(&m.new)
        ));
    }
    out.summary = format!(
        "### gitops-flow promote `{service}`: `{}` → `{}`\n\n| tag | from | to | rollback tag |\n|---|---|---|---|\n| `{}` | {} | {}{} | {} |\n",
        from.name,
        to.name,
        m.tag,
        ctx.link_or(m.previous.as_deref(), "(new)"),
        ctx.link_commit(&m.new),
        if m.changed { "" } else { " (unchanged)" },
        ctx.link_or(m.rollback.as_deref(), "(none)"),
    );
    Ok(out)
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

/// Services a merged commit deploys: from its metadata, else from the charts it changed.
fn affected_services(ctx: &Ctx<'_>, revision: &Oid, meta: Option<Meta>) -> Result<Vec<String>> {
    if let Some(s) = &ctx.inputs.service {
        ctx.config.service(s)?;
        return Ok(vec![s.clone()]);
    }
    let meta = match meta {
        Some(m) => Some(m),
        None => ctx.merged_meta(revision)?,
    };
    if let Some(m) = meta.filter(|m| m.command == "stage") {
        ctx.config.service(&m.service)?;
        return Ok(vec![m.service]);
    }
    let paths = ctx.repo.changed_paths(revision)?;
    let mut services = Vec::new();
    let candidates: Vec<String> = if ctx.config.services_listed {
        ctx.config.services.keys().cloned().collect()
    } else {
        paths
            .iter()
            .filter_map(|p| {
                p.strip_prefix("charts/")
                    .and_then(|r| r.split_once('/'))
                    .map(|(s, _)| s.to_string())
            })
            .collect()
    };
    for s in candidates {
        if services.contains(&s) || crate::names::check_ref_component("service", &s).is_err() {
            continue;
        }
        let dir = ctx.config.chart_dir(&s)?;
        if paths.iter().any(|p| p.starts_with(&format!("{dir}/"))) {
            services.push(s);
        }
    }
    Ok(services)
}
