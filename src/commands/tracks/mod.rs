//! Tracks as types: what differs between tag, file and branch tracking — reading
//! what an environment runs, moving it, going back — behind one interface, so a
//! command is written once ("read `from`, move `to`") and a new track is one new type.
//!
//! Reading the state is [`EnvState::read`](super::state::EnvState::read).

mod branch;
mod file;
mod tag;

use super::Outcome;
use super::context::Ctx;
use super::rollback::Target;
use crate::config::{Config, Environment, Track};
use crate::error::Result;
use crate::manifest::Location;
use crate::repo::{Oid, ReadPlan};

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
    /// What runs in the environment after a command moved it (its outcome `out`).
    fn moved(&self, out: &Outcome) -> Moved;
    /// Moves the environment `p.to` to what `p.from` runs.
    fn promote(&self, ctx: &Ctx<'_>, p: &Promotion<'_>, out: Outcome) -> Result<Outcome>;
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

/// Adds a file to read at the plan's file refs, once.
fn add_file(plan: &mut ReadPlan, f: String) {
    if !plan.files.contains(&f) {
        plan.files.push(f);
    }
}
