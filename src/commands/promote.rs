//! `promote`: move a service from one environment to the next.

use super::state::{Depth, EnvState};
use super::{Ctx, Meta, Outcome, next_env, short};
use crate::config::{Environment, Track};
use crate::error::{Error, Result};
use crate::repo::{Oid, PullRequestSpec, RefUpdate, trailers};

/// What an environment runs now: revision (tag/branch) and version.
pub struct Current {
    pub revision: Option<Oid>,
    pub version: Option<String>,
}

/// Reads what `env` runs for `service` (its version; see [`EnvState`]).
pub fn current(ctx: &Ctx<'_>, env: &Environment, service: &str, main_head: &Oid) -> Result<Current> {
    let state = EnvState::read(ctx, env, service, main_head, Depth::Version)?;
    let version = match env.track {
        // A branch without the version file runs no version of the service.
        Track::Branch => state.version.ok().flatten(),
        Track::Tag | Track::File => state.version?,
    };
    Ok(Current {
        revision: state.revision,
        version,
    })
}

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
    let guarded = moved_services(ctx, &to, &service);
    ctx.check_holds(&main_head, &guarded.iter().map(String::as_str).collect::<Vec<_>>(), &to)?;
    let mut out = Outcome {
        service: Some(service.clone()),
        environment: Some(to.name.clone()),
        ..Outcome::default()
    };
    match to.track {
        Track::Tag => promote_tag(ctx, &service, &from, &to, &main_head, out),
        Track::File => {
            let src = current(ctx, &from, &service, &main_head)?;
            let version = src.version.ok_or_else(|| {
                Error::input(format!(
                    "{service} has no version in `{}` yet; deploy it there first",
                    from.name
                ))
            })?;
            out.version = Some(version.clone());
            promote_file(ctx, &service, &from, &to, &version, &main_head, out)
        }
        Track::Branch => {
            out.branch = to.branch.clone();
            promote_branch(ctx, &from, &to, out)
        }
    }
}

/// The services a promotion into `to` moves: the one given, and for a
/// branch-tracked environment every service (they all move with the branch).
fn moved_services(ctx: &Ctx<'_>, to: &Environment, service: &str) -> Vec<String> {
    let mut services = vec![service.to_string()];
    if to.track == Track::Branch {
        for s in ctx.config.services.keys() {
            if !services.contains(s) {
                services.push(s.clone());
            }
        }
    }
    services
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

#[allow(clippy::too_many_arguments)]
pub fn promote_file(
    ctx: &Ctx<'_>,
    service: &str,
    from: &Environment,
    to: &Environment,
    version: &str,
    main_head: &Oid,
    mut out: Outcome,
) -> Result<Outcome> {
    let locations = ctx.config.locations(to, service)?;
    let (changes, old) = ctx.edit_locations(main_head, &locations, version)?;
    out.previous_version = Some(old.clone());
    if changes.is_empty() {
        ctx.runner.notice(&format!(
            "{service} already runs {version} in `{}`; nothing to promote",
            to.name
        ));
        out.summary = format!(
            "### gitops-flow promote\n\n`{service}` already runs `{version}` in `{}`.\n",
            to.name
        );
        return Ok(out);
    }
    let message = format!(
        "Promote {service} {version} to {}\n\nfrom {}: {old} -> {version}\n\n{}",
        to.name,
        from.name,
        trailers("promote", service, Some(&to.name), Some(version))
    );
    if to.direct {
        if let Some((commit, _)) = ctx.commit_direct(&message, |head| {
            ctx.check_holds(head, &[service], to)?;
            Ok(ctx.edit_locations(head, &locations, version)?.0)
        })? {
            out.changed = true;
            out.commit = Some(commit.clone()).filter(|c| !c.is_empty());
            out.revision = out.commit.clone();
            out.branch = Some(ctx.branch.clone());
            out.summary = format!(
                "### gitops-flow promote `{service}`: `{}` → `{}`\n\n`{old}` → `{version}`, committed {}\n",
                from.name,
                to.name,
                out.commit
                    .as_deref()
                    .map(|c| ctx.link_commit(c))
                    .unwrap_or_else(|| "(dry run)".into())
            );
        } else {
            // Another run committed this very change first.
            ctx.runner.notice(&format!(
                "{service} already runs {version} in `{}`; nothing to promote",
                to.name
            ));
        }
        return Ok(out);
    }
    let branch = format!("gitops-flow/{}/{service}", to.name);
    let meta = Meta {
        command: "promote".into(),
        service: service.to_string(),
        environment: Some(to.name.clone()),
        from: Some(from.name.clone()),
        version: Some(version.to_string()),
    };
    let spec = PullRequestSpec {
        head: branch.clone(),
        base: ctx.branch.clone(),
        title: format!("Promote {service} {version} to {}", to.name),
        body: format!(
            "Promotes `{service}` from `{}` to `{}`: `{old}` → `{version}`.\n\n{}\n",
            from.name,
            to.name,
            meta.render()
        ),
        labels: ctx.inputs.labels.clone(),
        auto_merge: ctx.inputs.auto_merge || to.auto_merge,
    };
    let p = ctx.propose(&branch, main_head, changes, &message, spec)?;
    p.fill(&mut out);
    out.changed = p.changed;
    out.summary = format!(
        "### gitops-flow promote `{service}`: `{}` → `{}`\n\n`{old}` → `{version}`: {}\n",
        from.name,
        to.name,
        p.summary_line()
    );
    Ok(out)
}

fn promote_branch(ctx: &Ctx<'_>, from: &Environment, to: &Environment, mut out: Outcome) -> Result<Outcome> {
    let from_branch = match from.track {
        Track::Branch => from.branch.clone().unwrap_or_default(),
        _ => ctx.branch.clone(),
    };
    let to_branch = to.branch.clone().unwrap_or_default();
    let refs = ctx
        .repo
        .resolve_refs(&[format!("refs/heads/{from_branch}"), format!("refs/heads/{to_branch}")])?;
    let src = refs[0].clone().ok_or_else(|| {
        Error::input(format!(
            "branch `{from_branch}` of `{}` not found; create it first",
            from.name
        ))
    })?;
    let dst = refs[1].clone().ok_or_else(|| {
        Error::input(format!(
            "branch `{to_branch}` of `{}` not found; create it first",
            to.name
        ))
    })?;
    out.revision = Some(src.commit.clone());
    out.previous_revision = Some(dst.commit.clone());
    if ctx.repo.is_ancestor(&src.commit, &dst.commit)? {
        ctx.runner.notice(&format!(
            "`{to_branch}` already contains `{from_branch}`; nothing to promote"
        ));
        return Ok(out);
    }
    if to.direct && ctx.repo.is_ancestor(&dst.commit, &src.commit)? {
        if !ctx.inputs.dry_run {
            let services = moved_services(ctx, to, ctx.inputs.service.as_deref().unwrap_or_default());
            let services: Vec<&str> = services.iter().map(String::as_str).collect();
            ctx.update_refs_unless_held(
                &[RefUpdate {
                    name: format!("refs/heads/{to_branch}"),
                    expected: Some(dst.target.clone()),
                    new: src.commit.clone(),
                }],
                &format!("gitops-flow promote {} fast-forward", to.name),
                to,
                &services,
            )?;
        }
        out.changed = true;
        out.summary = format!(
            "### gitops-flow promote\n\n`{to_branch}` fast-forwarded {} → {}\n",
            ctx.link_commit(&dst.commit),
            ctx.link_commit(&src.commit)
        );
        return Ok(out);
    }
    let spec = PullRequestSpec {
        head: from_branch.clone(),
        base: to_branch.clone(),
        title: format!("Promote {} to {}", from.name, to.name),
        body: format!(
            "Promotes `{from_branch}` ({}) into `{to_branch}`.\n",
            short(&src.commit)
        ),
        labels: ctx.inputs.labels.clone(),
        auto_merge: ctx.inputs.auto_merge || to.auto_merge,
    };
    let pr = if ctx.inputs.dry_run {
        Default::default()
    } else {
        ctx.repo.pull_request(&spec)?
    };
    out.changed = pr.created;
    out.pull_request_number = pr.number;
    out.pull_request_url = pr.url.clone();
    out.summary = format!(
        "### gitops-flow promote\n\npull request `{from_branch}` → `{to_branch}` {}\n",
        pr.url
            .unwrap_or_else(|| "(reported, not opened by gitops-flow: no forge API on this backend)".into())
    );
    Ok(out)
}
