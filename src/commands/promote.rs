//! `promote`: move a service from one environment to the next.

use super::tracks::{self, Promotion};
use super::{Ctx, Outcome, next_env, short};
use crate::error::{Error, Result};

pub fn run(ctx: &Ctx<'_>) -> Result<Outcome> {
    // The chain (seed 4): on a push to main with no service, continue the merged pull request's promotion.
    let (service, from_name) = match &ctx.inputs.service {
        Some(s) => {
            ctx.config.service(s)?;
            (s.clone(), ctx.inputs.from.clone())
        }
        None => {
            let Some(sha) = ctx.pushed_sha() else {
                return Err(Error::input("`promote` needs a service; pass input `service`"));
            };
            let meta = match ctx.pushed_change(&sha, ctx.inputs.from.as_deref())? {
                Ok(m) => m,
                Err(several) => {
                    // Not a promotion the chain can tell apart: say so, move nothing.
                    ctx.runner.warning(&format!("{several}; nothing promoted"));
                    return Ok(Outcome::default());
                }
            };
            let Some(meta) = meta else {
                ctx.runner.notice(&format!(
                    "commit {} did not come from a gitops-flow pull request and changed no version{}; nothing to promote",
                    short(&sha),
                    ctx.inputs.from.as_ref().map(|f| format!(" in `{f}`")).unwrap_or_default()
                ));
                return Ok(Outcome::default());
            };
            ctx.config.service(&meta.service)?;
            let env = meta
                .environment
                .clone()
                .unwrap_or_else(|| ctx.config.first_env().name.clone());
            (meta.service, Some(env))
        }
    };
    let from = ctx.env_or(from_name.as_ref(), ctx.config.first_env())?.clone();
    let to = match &ctx.inputs.to {
        Some(t) => ctx.config.env(t)?.clone(),
        None => match next_env(ctx.config, &from) {
            Some(e) => e.clone(),
            None if ctx.inputs.service.is_none() => {
                ctx.runner.notice(&format!(
                    "`{}` is the last environment; the promotion chain of {service} ends here",
                    from.name
                ));
                return Ok(Outcome {
                    service: Some(service),
                    environment: Some(from.name),
                    ..Outcome::default()
                });
            }
            None => {
                return Err(Error::input(format!(
                    "`{}` is the last environment; there is nothing to promote it to",
                    from.name
                )));
            }
        },
    };
    if from.name == to.name {
        return Err(Error::input(format!(
            "`from` and `to` are both `{}`; promote between two environments",
            to.name
        )));
    }
    ctx.prefetch(&service, &[&from, &to])?;
    let main_head = ctx.main_head()?;
    // Checked again right before the write (tags, branches) or on the very commit
    // the change goes on top of (direct commits).
    let guarded = tracks::of(&to).moved_services(ctx.config, &service);
    ctx.check_holds(&main_head, &guarded.iter().map(String::as_str).collect::<Vec<_>>(), &to)?;
    let out = Outcome {
        service: Some(service.clone()),
        environment: Some(to.name.clone()),
        ..Outcome::default()
    };
    let p = Promotion {
        service: &service,
        from: &from,
        to: &to,
        main_head: &main_head,
    };
    tracks::of(&to).promote(ctx, &p, out)
}
