//! The commands, written against the `Git` and `Forge` seams, and the dispatcher.
//!
//! One module per command; the pieces they share each have a named home:
//! `context` (the `Ctx`), `outcome` (outputs), `state` (what an environment runs),
//! `meta` (pull-request metadata), `plan` (the read plan), `tags` (the tag
//! compare-and-swap), `guard` (writes a hold can stop), `direct` (the direct-commit
//! retry loop), `propose` (pull-request proposals), `edit` (version files).

pub mod demo;
pub mod deploy;
pub mod lock;
pub mod preview;
pub mod promote;
pub mod report;
pub mod rollback;
pub mod stage;
pub mod state;
pub mod status;

mod context;
mod direct;
mod edit;
mod guard;
mod meta;
mod outcome;
mod plan;
mod propose;
mod tags;
mod tracks;

pub use context::Ctx;
pub use meta::Meta;
pub use outcome::Outcome;
pub use plan::{plan_for, read_plan};
pub use propose::Proposed;
pub use tags::TagMove;

use crate::config::{Config, Environment};
use crate::error::{Error, Result};
use crate::repo::Write;

/// Short commit ids in messages: the one helper of the crate, under its old name here.
pub use crate::names::short_sha as short;

/// Runs one command.
pub fn run(ctx: &Ctx<'_>) -> Result<Outcome> {
    let moves = matches!(ctx.inputs.command.as_str(), "stage" | "deploy" | "promote" | "rollback");
    if moves || ctx.inputs.command == "status" {
        // Everything the gate and the deployments will need is checked before the first write.
        status::preflight(ctx)?;
    }
    let result = match ctx.inputs.command.as_str() {
        "stage" => stage::run(ctx),
        "deploy" => deploy::run(ctx),
        "promote" => promote::run(ctx),
        "rollback" => rollback::run(ctx),
        "status" => status::run(ctx),
        "preview" => preview::run(ctx),
        "lock" => lock::run(ctx, true),
        "unlock" => lock::run(ctx, false),
        "report" => report::run(ctx),
        other => Err(Error::input(format!("unknown command `{other}`"))),
    };
    let mut out = match result {
        Ok(o) => o,
        Err(e) => return failed_after_writes(ctx, e),
    };
    if moves
        && !out.held
        && let Err(e) = status::after_move(ctx, &mut out)
    {
        if ctx.repo.written().is_empty() {
            return Err(e);
        }
        out.fail(&e.to_string());
    }
    Ok(out)
}

/// A command failed: with nothing written that is its error as it is; after a write
/// it is a failure of the operation (exit 1) whose outputs and summary say exactly
/// what was written.
fn failed_after_writes(ctx: &Ctx<'_>, e: Error) -> Result<Outcome> {
    let writes = ctx.repo.written();
    if writes.is_empty() {
        return Err(e);
    }
    let mut out = Outcome {
        changed: true,
        held: matches!(e, Error::Held(_)),
        service: ctx.inputs.service.clone(),
        environment: ctx.inputs.environment.clone().or(ctx.inputs.to.clone()),
        version: ctx.inputs.version.clone(),
        ..Outcome::default()
    };
    let mut done = Vec::new();
    for w in &writes {
        match w {
            Write::Refs(updates) => {
                for u in updates {
                    let name = u
                        .name
                        .trim_start_matches("refs/tags/")
                        .trim_start_matches("refs/heads/");
                    done.push(format!("`{name}` moved to {}", short(&u.new)));
                    if let Some(tag) = u.name.strip_prefix("refs/tags/") {
                        if out.tag.is_none() {
                            out.tag = Some(tag.to_string());
                            out.revision = Some(u.new.clone());
                            out.previous_revision = u.expected.clone();
                        }
                    } else if let Some(b) = u.name.strip_prefix("refs/heads/") {
                        out.branch = Some(b.to_string());
                    }
                }
            }
            Write::Commit { branch, commit } => {
                done.push(format!("committed {} to `{branch}`", short(commit)));
                out.commit = Some(commit.clone());
                out.branch = Some(branch.clone());
                if *branch == ctx.branch {
                    out.revision = Some(commit.clone());
                }
            }
            Write::PullRequest { number, url } => {
                done.push(format!(
                    "pull request {}",
                    match (number, url) {
                        (Some(n), Some(u)) => format!("[#{n}]({u})"),
                        (Some(n), None) => format!("#{n}"),
                        _ => "(reported)".into(),
                    }
                ));
                out.pull_request_number = *number;
                out.pull_request_url = url.clone();
            }
            Write::Deployment { id } => done.push(format!("deployment {id} recorded")),
        }
    }
    out.summary = format!(
        "### gitops-flow {}: failed after writing\n\n{}\n",
        ctx.inputs.command,
        done.iter().map(|d| format!("- {d}\n")).collect::<String>()
    );
    out.fail(&format!("{e} (already written: {})", done.join(", ")));
    Ok(out)
}

/// The next environment after `from`, if any.
pub fn next_env<'c>(config: &'c Config, from: &Environment) -> Option<&'c Environment> {
    let i = config.environments.iter().position(|e| e.name == from.name)?;
    config.environments.get(i + 1)
}
