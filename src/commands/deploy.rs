//! `deploy`: after a stage pull request merged, move the first environment.

use super::{Ctx, Meta, Outcome, is_tag, short};
use crate::error::{Error, Result};
use crate::repo::Oid;

/// The merged revision, from the input, the event, or the main branch head.
fn merged_revision(ctx: &Ctx<'_>, main_head: &Oid) -> Result<Option<(Oid, Option<Meta>)>> {
    if let Some(rev) = &ctx.inputs.revision {
        return Ok(Some((ctx.resolve_deployable(rev, main_head)?, None)));
    }
    if let Some(pr) = ctx.event.pull_request() {
        let merged = pr.get("merged").and_then(|m| m.as_bool()).unwrap_or(false);
        if !merged {
            return Ok(None);
        }
        let sha = pr.get("merge_commit_sha").and_then(|s| s.as_str()).ok_or_else(|| {
            Error::input("the pull_request event has no merge_commit_sha; run deploy on `pull_request: closed` of a merged pull request or pass `revision`")
        })?;
        let meta = pr.get("body").and_then(|b| b.as_str()).and_then(Meta::parse);
        return Ok(Some((ctx.resolve_deployable(sha, main_head)?, meta)));
    }
    if ctx.event.name == "push"
        && let Some(sha) = ctx.pushed_sha()
    {
        return Ok(Some((ctx.resolve_deployable(&sha, main_head)?, None)));
    }
    Ok(Some((main_head.clone(), None)))
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

pub fn run(ctx: &Ctx<'_>) -> Result<Outcome> {
    let main_head = ctx.main_head()?;
    let first = ctx.config.first_env();
    let mut out = Outcome {
        environment: Some(first.name.clone()),
        ..Outcome::default()
    };
    let Some((revision, meta)) = merged_revision(ctx, &main_head)? else {
        ctx.runner
            .notice("the pull request was closed without merging; nothing to deploy");
        out.summary =
            "### gitops-flow deploy\n\nThe pull request was closed without merging: nothing to deploy.\n".into();
        return Ok(out);
    };
    out.revision = Some(revision.clone());
    if !is_tag(first) {
        // The merge itself deployed a file- or branch-tracked environment: nothing to
        // move, but `deployments` and `wait` apply to the environment it deployed.
        let env = match meta.as_ref().and_then(|m| m.environment.clone()) {
            Some(e) => ctx.config.env(&e)?.clone(),
            None => first.clone(),
        };
        ctx.runner.notice(&format!(
            "environment `{}` deploys what the merged change says; nothing to move",
            env.name
        ));
        out.environment = Some(env.name.clone());
        out.service = ctx.inputs.service.clone().or(meta.as_ref().map(|m| m.service.clone()));
        if let Some(s) = &out.service
            && let Some(h) = ctx.holds_at(&main_head)?.blocking(s, &env.name)
        {
            // The merge deployed already; nothing left to refuse, but say so.
            ctx.runner.warning(&format!(
                "the merged change deployed `{s}` to `{}` while it is held (by {} since {}: \"{}\"); roll back if that was not meant",
                env.name, h.by, h.at, h.reason
            ));
        }
        out.version = meta.as_ref().and_then(|m| m.version.clone());
        out.commit = Some(revision.clone());
        let what = match (&out.service, &out.version) {
            (Some(s), Some(v)) => format!(
                " `{s}` `{v}`{}",
                if meta.as_ref().is_some_and(|m| m.command == "rollback") {
                    " (a rollback)"
                } else {
                    ""
                }
            ),
            (Some(s), None) => format!(" `{s}`"),
            _ => String::new(),
        };
        out.summary = format!(
            "### gitops-flow deploy\n\nThe merge {} deployed{what} to `{}`.\n",
            ctx.link_commit(&revision),
            env.name
        );
        out.deployed = true;
        return Ok(out);
    }
    let services = affected_services(ctx, &revision, meta)?;
    if services.is_empty() {
        ctx.runner.notice(&format!(
            "commit {} changes no service's chart; nothing to deploy",
            short(&revision)
        ));
        out.summary = format!(
            "### gitops-flow deploy\n\nCommit {} changes no service: nothing to deploy.\n",
            ctx.link_commit(&revision)
        );
        return Ok(out);
    }
    let moves: Vec<(String, Oid)> = services.iter().map(|s| (s.clone(), revision.clone())).collect();
    let results = ctx.move_tags(first, &moves, "deploy", true)?;
    let mut summary = format!(
        "### gitops-flow deploy to `{}`\n\n| service | tag | from | to |\n|---|---|---|---|\n",
        first.name
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
        out.version = ctx.chart_version(&m.service, &revision).ok();
    } else {
        out.service = Some(services.join(","));
    }
    out.summary = summary;
    Ok(out)
}
