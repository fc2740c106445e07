//! `deploy`: after a stage pull request merged, move the first environment.

use super::tracks::{self, Merged};
use super::{Ctx, Meta, Outcome};
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
    let merged = Merged {
        revision,
        meta,
        main_head,
    };
    tracks::of(first).deploy(ctx, first, &merged, out)
}
