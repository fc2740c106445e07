//! Tracks as types: what differs between tag, file and branch tracking — reading
//! what an environment runs, moving it, going back — behind one interface, so a
//! command is written once ("read `from`, move `to`") and a new track is one new type.
//!
//! Reading the state is [`EnvTrack::state`], through [`EnvState::read`](super::state::EnvState::read).

mod branch;
mod file;
mod tag;

use super::context::Ctx;
use super::rollback::Target;
use super::state::{Depth, EnvState};
use super::{Meta, Outcome};
use crate::config::{Config, Environment, Track};
use crate::error::Result;
use crate::manifest::Location;
use crate::repo::{Oid, ReadPlan};
use serde_json::Value;

/// A promotion of `service` from `from` into `to`, read at the main head `main_head`.
pub struct Promotion<'a> {
    pub service: &'a str,
    pub from: &'a Environment,
    pub to: &'a Environment,
    pub main_head: &'a Oid,
}

/// Where `stage` sets a service's version when the pipeline starts in an environment.
pub struct StageTarget {
    pub locations: Vec<Location>,
    /// The pull-request branch.
    pub branch: String,
    /// The environment the change deploys to on merge (`None`: the chart, deployed by `deploy`).
    pub environment: Option<String>,
    /// Committed straight onto the main branch.
    pub direct: bool,
    /// The environment asks for auto-merge.
    pub auto_merge: bool,
}

/// A change merged onto the main branch, for `deploy`.
pub struct Merged {
    pub revision: Oid,
    /// The metadata of its pull request (`None`: not a gitops-flow pull request, or not known).
    pub meta: Option<Meta>,
    pub main_head: Oid,
}

/// What the health gate and the deployments look at after a command moved an environment.
pub enum Moved {
    /// The environment runs this revision now (`None`: nothing to look at).
    Revision(Option<Oid>),
    /// The change waits in a pull request: nothing runs it yet.
    Pending,
}

/// What a track does to read, move and restore an environment.
pub trait EnvTrack {
    /// Adds what a command on `service` in `env` will read to `plan`.
    fn plan(&self, config: &Config, env: &Environment, service: &str, plan: &mut ReadPlan);
    /// Where `stage` sets `service`'s version when the pipeline starts in `env`.
    fn stage_target(&self, ctx: &Ctx<'_>, env: &Environment, service: &str) -> Result<StageTarget>;
    /// What `env` runs for `service`: the one answer every command uses.
    fn state(&self, ctx: &Ctx<'_>, env: &Environment, service: &str, main_head: &Oid, depth: Depth)
    -> Result<EnvState>;
    /// The services a move of `service` into an environment of this track moves
    /// (held or not): the one given, unless the track moves more with it.
    fn moved_services(&self, config: &Config, service: &str) -> Vec<String> {
        let _ = config;
        vec![service.to_string()]
    }
    /// What runs in the environment after a command moved it (its outcome `out`).
    fn moved(&self, out: &Outcome) -> Moved;
    /// How a message names what a rollback (its outcome `out`) went back to: the
    /// version, else the commit.
    fn rolled_back_to(&self, out: &Outcome) -> Option<String> {
        out.version
            .clone()
            .or_else(|| out.revision.as_deref().map(|r| crate::names::short_sha(r).to_string()))
    }
    /// Whether a push to the main branch deploys this track's environments (their
    /// versions live in files on main), for the chain to read what a push changed.
    fn deployed_by_push(&self) -> bool {
        false
    }
    /// Moves the environment `p.to` to what `p.from` runs.
    fn promote(&self, ctx: &Ctx<'_>, p: &Promotion<'_>, out: Outcome) -> Result<Outcome>;
    /// `report`'s cells: what each (environment of this track, service) runs, read
    /// together (batched, not a read a cell). One JSON object a cell, in order:
    /// `track`, where it was read, `version` and `revision` — or `error`, or
    /// `missing` (nothing deployed there).
    fn report(&self, ctx: &Ctx<'_>, cells: &[(&Environment, &str)], main_head: &Oid) -> Result<Vec<Value>>;
    /// `deploy` into `env` (the first environment) after `merged` landed.
    fn deploy(&self, ctx: &Ctx<'_>, env: &Environment, merged: &Merged, out: Outcome) -> Result<Outcome>;
    /// Puts `env` back to its previous state (or to what `to` names).
    fn roll_back(
        &self,
        ctx: &Ctx<'_>,
        service: &str,
        env: &Environment,
        to: &Target,
        main_head: &Oid,
        out: Outcome,
    ) -> Result<Outcome>;
}

/// The implementation of `env`'s track.
pub fn of(env: &Environment) -> &'static dyn EnvTrack {
    match env.track {
        Track::Tag => &tag::Tag,
        Track::File => &file::File,
        Track::Branch => &branch::Branch,
    }
}

/// The chart's `appVersion`, where a stage pull request sets the version of a
/// service whose first environment is not file-tracked.
fn chart_stage(ctx: &Ctx<'_>, service: &str) -> Result<StageTarget> {
    let chart = ctx.config.chart_dir(service)?;
    Ok(StageTarget {
        locations: vec![Location::new(
            format!("{chart}/Chart.yaml"),
            crate::config::LocationKind::ChartAppVersion,
        )],
        branch: format!("gitops-flow/stage/{service}"),
        environment: None,
        direct: false,
        auto_merge: false,
    })
}

/// `deploy` into a file- or branch-tracked environment: the merge itself deployed
/// it, so nothing moves; `deployments` and `wait` apply to the environment the
/// merged change says (else `env`, the first one).
fn merge_deployed(ctx: &Ctx<'_>, env: &Environment, merged: &Merged, mut out: Outcome) -> Result<Outcome> {
    // The merge itself deployed a file- or branch-tracked environment: nothing to
    // move, but `deployments` and `wait` apply to the environment it deployed.
    let env = match merged.meta.as_ref().and_then(|m| m.environment.clone()) {
        Some(e) => ctx.config.env(&e)?.clone(),
        None => env.clone(),
    };
    ctx.runner.notice(&format!(
        "environment `{}` deploys what the merged change says; nothing to move",
        env.name
    ));
    out.environment = Some(env.name.clone());
    out.service = ctx
        .inputs
        .service
        .clone()
        .or(merged.meta.as_ref().map(|m| m.service.clone()));
    if let Some(s) = &out.service
        && let Some(h) = ctx.holds_at(&merged.main_head)?.blocking(s, &env.name)
    {
        // The merge deployed already; nothing left to refuse, but say so.
        ctx.runner.warning(&format!(
            "the merged change deployed `{s}` to `{}` while it is held (by {} since {}: \"{}\"); roll back if that was not meant",
            env.name, h.by, h.at, h.reason
        ));
    }
    out.version = merged.meta.as_ref().and_then(|m| m.version.clone());
    out.commit = Some(merged.revision.clone());
    let what = match (&out.service, &out.version) {
        (Some(s), Some(v)) => format!(
            " `{s}` `{v}`{}",
            if merged.meta.as_ref().is_some_and(|m| m.command == "rollback") {
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
        ctx.link_commit(&merged.revision),
        env.name
    );
    out.deployed = true;
    Ok(out)
}

/// Adds a file to read at the plan's file refs, once.
fn add_file(plan: &mut ReadPlan, f: String) {
    if !plan.files.contains(&f) {
        plan.files.push(f);
    }
}
