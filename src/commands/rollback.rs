//! `rollback`: put an environment of a service back.

use super::tracks;
use super::{Ctx, Outcome};
use crate::config::Environment;
use crate::error::Result;

pub fn run(ctx: &Ctx<'_>) -> Result<Outcome> {
    let service = ctx.require_service()?;
    let env = ctx
        .env_or(ctx.inputs.environment.as_ref(), ctx.config.last_env())?
        .clone();
    let to = Target {
        revision: ctx.inputs.revision.clone(),
        version: ctx.inputs.version.clone(),
    };
    rollback(ctx, &service, &env, &to)
}

/// Where to roll back to: a revision (tag mode) or version (file mode) given by
/// the user; empty for the rollback point (the gate's rollback-on-failure).
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub revision: Option<String>,
    pub version: Option<String>,
}

/// Rolls `service` back in `env`.
pub fn rollback(ctx: &Ctx<'_>, service: &str, env: &Environment, to: &Target) -> Result<Outcome> {
    ctx.prefetch(service, &[env])?;
    let main_head = ctx.main_head()?;
    let out = Outcome {
        service: Some(service.to_string()),
        environment: Some(env.name.clone()),
        ..Outcome::default()
    };
    tracks::of(env).roll_back(ctx, service, env, to, &main_head, out)
}
