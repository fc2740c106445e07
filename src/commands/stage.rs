//! `stage`: set a service's version at the start of the pipeline.

use super::{Ctx, Meta, Outcome, short};
use crate::error::Result;
use crate::repo::{PullRequestSpec, trailers};

pub fn run(ctx: &Ctx<'_>) -> Result<Outcome> {
    let service = ctx.require_service()?;
    let version = ctx.require_version()?;
    let first = ctx.config.first_env();
    let main_head = ctx.main_head()?;
    let mut out = Outcome {
        service: Some(service.clone()),
        version: Some(version.clone()),
        ..Outcome::default()
    };

    // Where the version lives: the chart (tag and branch mode) or the first environment's files.
    let target = super::tracks::of(first).stage_target(ctx, first, &service)?;
    let (locations, branch_name, env_name) = (target.locations, target.branch, target.environment);
    out.environment = env_name.clone();
    // Staging starts the pipeline in the first environment: a hold there stops it.
    ctx.check_holds(&main_head, &[&service], first)?;
    let (changes, old) = ctx.edit_locations(&main_head, &locations, &version)?;
    out.previous_version = Some(old.clone());
    let message = format!(
        "Stage {service} {version}\n\n{}: {old} -> {version}\n\n{}",
        locations.iter().map(|l| l.file.as_str()).collect::<Vec<_>>().join(", "),
        trailers("stage", &service, env_name.as_deref(), Some(&version))
    );

    if changes.is_empty() {
        ctx.runner.notice(&format!(
            "{service} is already at {version} on `{}`; nothing to stage",
            ctx.branch
        ));
        out.summary = format!(
            "### gitops-flow stage\n\n`{service}` is already at `{version}` on `{}`: nothing to do.\n",
            ctx.branch
        );
        return Ok(out);
    }

    if target.direct {
        // The holds are read at the very commit the change goes on top of.
        let result = ctx.commit_direct(&message, |head| {
            ctx.check_holds(head, &[&service], first)?;
            Ok(ctx.edit_locations(head, &locations, &version)?.0)
        })?;
        if let Some((commit, _)) = result {
            out.changed = true;
            out.commit = Some(commit.clone()).filter(|c| !c.is_empty());
            out.branch = Some(ctx.branch.clone());
            out.revision = out.commit.clone();
            out.summary = format!(
                "### gitops-flow stage\n\n`{service}` in `{}`: `{old}` → `{version}`, committed to `{}` {}\n",
                first.name,
                ctx.branch,
                if commit.is_empty() {
                    "(dry run)".to_string()
                } else {
                    ctx.link_commit(&commit)
                }
            );
        } else {
            // Another run committed this very change first.
            ctx.runner.notice(&format!(
                "{service} is already at {version} on `{}`; nothing to stage",
                ctx.branch
            ));
            out.summary = format!(
                "### gitops-flow stage\n\n`{service}` is already at `{version}` on `{}`: nothing to do.\n",
                ctx.branch
            );
        }
        return Ok(out);
    }

    let meta = Meta {
        command: "stage".into(),
        service: service.clone(),
        environment: env_name.clone(),
        from: None,
        version: Some(version.clone()),
    };
    let spec = PullRequestSpec {
        head: branch_name.clone(),
        base: ctx.branch.clone(),
        title: match &env_name {
            Some(e) => format!("Deploy {service} {version} to {e}"),
            None => format!("Stage {service} {version}"),
        },
        body: format!(
            "Sets `{service}` to `{version}` (was `{old}`) in {}.\n\nMerging this pull request deploys it{}.\n\n{}\n",
            locations
                .iter()
                .map(|l| format!("`{}`", l.file))
                .collect::<Vec<_>>()
                .join(", "),
            env_name.as_ref().map(|e| format!(" to `{e}`")).unwrap_or_default(),
            meta.render()
        ),
        labels: ctx.inputs.labels.clone(),
        auto_merge: ctx.inputs.auto_merge || target.auto_merge,
    };
    let proposal = ctx.propose(&branch_name, &main_head, changes, &message, spec)?;
    proposal.fill(&mut out);
    out.changed = proposal.changed;
    out.summary = format!(
        "### gitops-flow stage\n\n`{service}`: `{old}` → `{version}` on branch `{branch_name}` ({}), {}\n",
        proposal.commit.as_deref().map(short).unwrap_or("dry run"),
        proposal.summary_line()
    );
    Ok(out)
}
