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
use crate::config::{Environment, Track};
use crate::error::Result;
use crate::repo::Oid;

/// A promotion of `service` from `from` into `to`, read at the main head `main_head`.
pub struct Promotion<'a> {
    pub service: &'a str,
    pub from: &'a Environment,
    pub to: &'a Environment,
    pub main_head: &'a Oid,
}

/// What a track does to move and restore an environment.
pub trait EnvTrack {
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
