//! `status`: the health gate, also run by deploy/promote/rollback with `wait`.

use super::state::{Depth, EnvState, Source};
use super::tracks::Moved;
use super::{Ctx, Meta, Outcome, short};
use crate::config::{Environment, expand};
use crate::error::{Error, Result};
use crate::gates::argocd::{Kick, SyncMode};
use crate::gates::{self, GateResult, Polling};
use crate::repo::Oid;

/// Which service and environment to gate: inputs, or (on a promotion pull request)
/// the previous environment named by the pull request's metadata.
fn target(ctx: &Ctx<'_>) -> Result<(String, Environment)> {
    if ctx.inputs.service.is_none()
        && let Some(pr) = ctx.event.pull_request()
    {
        let meta = pr
            .get("body")
            .and_then(|b| b.as_str())
            .and_then(Meta::parse)
            .ok_or_else(|| {
                Error::input(
                    "this pull request carries no gitops-flow metadata; pass `service` and `environment` to `status`",
                )
            })?;
        ctx.config.service(&meta.service)?;
        let env = match (&meta.from, &meta.environment) {
            (Some(f), _) => ctx.config.env(f)?.clone(),
            (None, Some(e)) => {
                let i = ctx.config.env_index(e)?;
                ctx.config.environments[i.saturating_sub(1)].clone()
            }
            (None, None) => ctx.config.first_env().clone(),
        };
        return Ok((meta.service, env));
    }
    if ctx.inputs.service.is_none() && ctx.event.name == "push" {
        // After a promotion pull request merged: gate the environment it deployed.
        if let Some(sha) = ctx.pushed_sha()
            && let Some(meta) = ctx
                .pushed_change(&sha, ctx.inputs.environment.as_deref())?
                .map_err(Error::input)?
        {
            ctx.config.service(&meta.service)?;
            let env = match &meta.environment {
                Some(e) => ctx.config.env(e)?.clone(),
                None => ctx.config.first_env().clone(),
            };
            return Ok((meta.service, env));
        }
        return Err(Error::input(
            "this push did not come from a gitops-flow pull request and changed no version; pass `service` and `environment` to `status`",
        ));
    }
    let service = ctx.require_service()?;
    let env = ctx
        .env_or(ctx.inputs.environment.as_ref(), ctx.config.last_env())?
        .clone();
    Ok((service, env))
}

/// The revision the environment should be running (see [`EnvState`]).
pub fn expected_revision(ctx: &Ctx<'_>, service: &str, env: &Environment) -> Result<Oid> {
    let main = ctx.main_head()?;
    let state = EnvState::read(ctx, env, service, &main, Depth::Revision)?;
    state.revision.ok_or_else(|| match state.source {
        Source::Tag { tag, .. } => Error::input(format!(
            "tag `{tag}` not found; nothing is deployed to `{}` yet",
            env.name
        )),
        Source::Branch { branch } => Error::input(format!("branch `{branch}` not found")),
        // A file-tracked environment always has a revision (the main branch at worst).
        Source::File { .. } => Error::input(format!("nothing is deployed to `{}` yet", env.name)),
    })
}

/// Checks, before the first write, everything the health gate and the deployments
/// of this run will need: a usable gate, its token, the application names and URL
/// templates of every environment the run can reach.
pub fn preflight(ctx: &Ctx<'_>) -> Result<()> {
    // `sync`: the environments this run can move or gate, and whether any of them
    // asks Argo CD to sync: then Argo CD must be configured.
    if let Some(env) = reachable_envs(ctx)?.into_iter().find(|e| wants_sync(ctx, e)) {
        let why = if ctx.inputs.sync {
            "input `sync` is true".to_string()
        } else {
            format!(
                "environment `{}` says `argocd-sync: true` in {}",
                env.name, ctx.config.source
            )
        };
        if ctx.inputs.argocd_server.is_none() || ctx.inputs.argocd_token.is_none() {
            return Err(Error::input(format!(
                "{why}, so gitops-flow asks Argo CD to sync the application, but {} not set; pass `argocd-server` and `argocd-token` (or drop `sync`)",
                match (&ctx.inputs.argocd_server, &ctx.inputs.argocd_token) {
                    (None, None) => "`argocd-server` and `argocd-token` are",
                    (None, Some(_)) => "`argocd-server` is",
                    _ => "`argocd-token` is",
                }
            )));
        }
    }
    let sync_any = ctx.inputs.sync || ctx.config.environments.iter().any(|e| e.argocd_sync);
    let gating = ctx.inputs.wait || ctx.inputs.command == "status" || (sync_any && ctx.inputs.argocd_server.is_some());
    let services: Vec<String> = match &ctx.inputs.service {
        Some(s) => vec![s.clone()],
        None if ctx.config.services_listed => ctx.config.services.keys().cloned().collect(),
        None => vec!["service".into()],
    };
    for env in &ctx.config.environments {
        for service in &services {
            if let Some(u) = &env.url {
                expand(u, service, &env.name, None)?;
            }
            if !gating {
                continue;
            }
            if ctx.inputs.argocd_server.is_some() {
                let app_t = ctx
                    .inputs
                    .argocd_app
                    .clone()
                    .or_else(|| env.argocd_app.clone())
                    .unwrap_or_else(|| "{service}-{env}".into());
                let app = expand(&app_t, service, &env.name, None)?;
                crate::names::check_ref_component("argocd-app", &app)?;
            } else {
                let pattern_t = ctx
                    .inputs
                    .status_context
                    .clone()
                    .unwrap_or_else(|| "kustomization/{service}-{env}/*".into());
                expand(&pattern_t, service, &env.name, None)?;
            }
        }
    }
    if !gating {
        return Ok(());
    }
    match (&ctx.inputs.argocd_server, &ctx.inputs.argocd_token) {
        (Some(_), None) => Err(Error::input(
            "`argocd-server` is set but `argocd-token` is not; pass the Argo CD API token",
        )),
        (Some(server), Some(token)) => {
            crate::repo::github::Api::new(server, server, token, crate::repo::github::RetryPolicy::default())
                .map(|_| ())
        }
        (None, _) if ctx.forge.api().is_none() => Err(Error::input(format!(
            "`{}` has no health gate to use: the commit-status gate reads GitHub statuses and check runs (`backend: github`); pass `argocd-server` and `argocd-token` for the Argo CD gate{}",
            if ctx.inputs.command == "status" {
                "status"
            } else {
                "wait"
            },
            if ctx.inputs.wait { ", or drop `wait`" } else { "" }
        ))),
        (None, _) => Ok(()),
    }
}

/// The environments a run of this command can move or gate (for the checks made
/// before the first write).
fn reachable_envs<'c>(ctx: &'c Ctx<'_>) -> Result<Vec<&'c Environment>> {
    let config = ctx.config;
    let named = |n: &Option<String>| n.as_ref().map(|n| config.env(n)).transpose();
    Ok(match ctx.inputs.command.as_str() {
        "stage" | "deploy" => vec![config.first_env()],
        "promote" => match (named(&ctx.inputs.to)?, named(&ctx.inputs.from)?) {
            (Some(to), _) => vec![to],
            (None, Some(from)) => super::next_env(config, from).into_iter().collect(),
            // The push chain can continue into any environment.
            (None, None) if ctx.inputs.service.is_none() => config.environments.iter().collect(),
            (None, None) => super::next_env(config, config.first_env()).into_iter().collect(),
        },
        "rollback" | "status" => vec![named(&ctx.inputs.environment)?.unwrap_or(config.last_env())],
        _ => Vec::new(),
    })
}

/// Runs the configured gate for `service` in `env` at `expected`.
pub fn gate(ctx: &Ctx<'_>, service: &str, env: &Environment, expected: &Oid, sync: SyncMode) -> Result<GateResult> {
    let polling = Polling::from_env(ctx.env);
    if ctx.inputs.argocd_server.is_some() {
        let mut probe = argo_probe(ctx, service, env, expected)?.with_sync(sync);
        return gates::wait(ctx.runner, &mut probe, ctx.inputs.timeout, &polling);
    }
    let pattern_t = ctx
        .inputs
        .status_context
        .clone()
        .unwrap_or_else(|| "kustomization/{service}-{env}/*".into());
    let pattern = expand(&pattern_t, service, &env.name, None)?;
    let checks = ctx.forge.api().ok_or_else(|| {
        Error::input(
            "the commit-status gate reads GitHub statuses and check runs: use `backend: github`, or give `argocd-server` for the Argo CD gate",
        )
    })?;
    let mut probe = gates::checks::ChecksProbe {
        repo: ctx.repo,
        checks,
        expected: expected.clone(),
        main_ref: ctx.main_ref(),
        pattern,
    };
    gates::wait(ctx.runner, &mut probe, ctx.inputs.timeout, &polling)
}

/// Whether this run asks Argo CD to sync `env` (input `sync`, or `argocd-sync: true`).
pub fn wants_sync(ctx: &Ctx<'_>, env: &Environment) -> bool {
    ctx.inputs.sync || env.argocd_sync
}

fn argo_probe<'c>(
    ctx: &'c Ctx<'_>,
    service: &str,
    env: &Environment,
    expected: &Oid,
) -> Result<gates::argocd::ArgoProbe<'c>> {
    let (Some(server), Some(token)) = (&ctx.inputs.argocd_server, &ctx.inputs.argocd_token) else {
        return Err(Error::input(
            "the Argo CD gate and `sync` need `argocd-server` and `argocd-token`; pass both",
        ));
    };
    let app_t = ctx
        .inputs
        .argocd_app
        .clone()
        .or_else(|| env.argocd_app.clone())
        .unwrap_or_else(|| "{service}-{env}".into());
    let app = expand(&app_t, service, &env.name, None)?;
    gates::argocd::ArgoProbe::new(server, token, &app, expected.clone(), ctx.repo)
}

/// After a move without a gate: ask Argo CD to sync (an operation already running
/// is left alone). Returns the summary line.
pub fn sync_after_move(ctx: &Ctx<'_>, service: &str, env: &Environment, expected: &Oid) -> Result<String> {
    let mut probe = argo_probe(ctx, service, env, expected)?.with_sync(SyncMode::AfterMove);
    let app = probe.app().to_string();
    Ok(match probe.kick(ctx.inputs.timeout)? {
        Kick::Started => format!("🔄 asked Argo CD to sync `{app}`"),
        Kick::Running => format!(
            "an Argo CD operation is running on `{app}`; it was not interrupted and no sync was started (pass `wait: true` to sync after it)"
        ),
        Kick::NotNeeded => format!("Argo CD application `{app}` is already synced at {}", short(expected)),
    })
}

/// Records a failed gate in the outcome, rolling back first when asked.
pub fn on_failure(
    ctx: &Ctx<'_>,
    service: &str,
    env: &Environment,
    result: &GateResult,
    out: &mut Outcome,
    may_roll_back: bool,
) -> Result<()> {
    let mut msg = format!("{service} is not healthy in `{}`: {}", env.name, result.last);
    if ctx.inputs.rollback_on_failure && may_roll_back {
        let rb = super::rollback::rollback(ctx, service, env, &super::rollback::Target::default())?;
        msg.push_str(&format!(
            "; rolled `{}` back{}",
            env.name,
            super::tracks::of(env)
                .rolled_back_to(&rb)
                .map(|t| format!(" to {t}"))
                .unwrap_or_default()
        ));
        out.changed = rb.changed || out.changed;
        out.rollback_revision = rb.revision.clone().or(rb.commit.clone());
        out.summary.push_str(&format!(
            "\n**Rolled back** after the failed gate:\n\n{}",
            rb.summary.replace("### ", "#### ")
        ));
        if rb.changed && !ctx.inputs.dry_run && wants_sync(ctx, env) {
            let expected = rb.revision.clone().or(rb.commit.clone());
            if let Some(expected) = expected {
                match sync_after_move(ctx, service, env, &expected) {
                    Ok(line) => out.summary.push_str(&format!("\n{line}\n")),
                    Err(e) => msg.push_str(&format!("; the rollback was not synced: {e}")),
                }
            }
        }
        let why = format!("{} was not healthy: {}", ctx.inputs.command, result.last);
        if let Some(line) = super::lock::hold_after_rollback(ctx, env, service, &why)? {
            msg.push_str(&format!("; held `{service}` in `{}`", env.name));
            out.summary.push_str(&format!("\n{line}\n"));
        }
    } else {
        msg.push_str(if ctx.inputs.rollback_on_failure {
            ""
        } else {
            "; pass `rollback-on-failure: true` to roll back automatically"
        });
    }
    out.summary.push_str(&format!("\n❌ {msg}\n"));
    out.failure = Some(msg);
    Ok(())
}

pub fn run(ctx: &Ctx<'_>) -> Result<Outcome> {
    let (service, env) = target(ctx)?;
    let expected = match &ctx.inputs.revision {
        Some(r) => ctx
            .repo
            .resolve_revision(r)?
            .ok_or_else(|| Error::input(format!("revision `{r}` not found")))?,
        None => expected_revision(ctx, &service, &env)?,
    };
    let mut out = Outcome {
        service: Some(service.clone()),
        environment: Some(env.name.clone()),
        revision: Some(expected.clone()),
        ..Outcome::default()
    };
    let sync = if wants_sync(ctx, &env) {
        SyncMode::WhenOutOfSync
    } else {
        SyncMode::Off
    };
    let result = gate(ctx, &service, &env, &expected, sync)?;
    out.summary = format!("### gitops-flow status `{service}` in `{}`\n\n", env.name);
    if result.healthy {
        out.summary.push_str(&format!(
            "✅ healthy at {} after {}s: {}\n",
            ctx.link_commit(&expected),
            result.elapsed.as_secs(),
            result.last
        ));
    } else {
        on_failure(ctx, &service, &env, &result, &mut out, true)?;
    }
    Ok(out)
}

/// After deploy/promote/rollback moved an environment: record a GitHub deployment
/// and, with `wait`, gate on health (rolling back on failure when asked).
pub fn after_move(ctx: &Ctx<'_>, out: &mut Outcome) -> Result<()> {
    let (Some(services), Some(env_name)) = (out.service.clone(), out.environment.clone()) else {
        return Ok(());
    };
    let moved = out.changed || out.deployed;
    if ctx.inputs.dry_run || (!moved && !ctx.inputs.wait) {
        return Ok(());
    }
    let sync = moved && wants_sync(ctx, ctx.config.env(&env_name)?);
    let env = ctx.config.env(&env_name)?.clone();
    let revision = match super::tracks::of(&env).moved(out) {
        Moved::Revision(r) => r,
        Moved::Pending => {
            if ctx.inputs.wait || ctx.inputs.deployments {
                ctx.runner.notice("the change waits in a pull request; the health gate and deployment run when it merges (run `status` then)");
            }
            return Ok(());
        }
    };
    let Some(revision) = revision else { return Ok(()) };
    let log_url = match (
        ctx.env.get("GITHUB_SERVER_URL"),
        ctx.env.get("GITHUB_REPOSITORY"),
        ctx.env.get("GITHUB_RUN_ID"),
    ) {
        (Some(s), Some(r), Some(id)) => Some(format!("{s}/{r}/actions/runs/{id}")),
        _ => None,
    };
    for service in services.split(',') {
        let env_url = env
            .url
            .as_ref()
            .map(|u| expand(u, service, &env.name, None))
            .transpose()?;
        let deployment = if ctx.inputs.deployments && moved {
            let spec = crate::repo::DeploymentSpec {
                sha: revision.clone(),
                environment: env.name.clone(),
                description: format!("gitops-flow {} {service}", ctx.inputs.command),
                payload: serde_json::json!({
                    "service": service,
                    "version": out.version,
                    "previous-revision": out.previous_revision,
                    "command": ctx.inputs.command,
                }),
                production: ctx.config.last_env().name == env.name,
                transient: false,
            };
            match ctx.forge.api() {
                Some(api) => {
                    let id = api.create_deployment(&spec)?;
                    deployment_status(api, id, "in_progress", env_url.as_deref(), log_url.as_deref())?;
                    Some((api, id))
                }
                None => {
                    ctx.runner.notice("deployments are recorded on the github backend only");
                    None
                }
            }
        } else {
            None
        };
        if sync && !ctx.inputs.wait {
            let line = sync_after_move(ctx, service, &env, &revision)?;
            out.summary.push_str(&format!("\n{line}\n"));
        }
        let mode = if sync { SyncMode::AfterMove } else { SyncMode::Off };
        let healthy = if ctx.inputs.wait {
            let result = gate(ctx, service, &env, &revision, mode)?;
            if !result.healthy {
                if let Some((api, id)) = deployment {
                    deployment_status(api, id, "failure", env_url.as_deref(), log_url.as_deref())?;
                }
                on_failure(ctx, service, &env, &result, out, ctx.inputs.command != "rollback")?;
                return Ok(());
            }
            out.summary.push_str(&format!(
                "\n✅ `{service}` healthy in `{}` after {}s: {}\n",
                env.name,
                result.elapsed.as_secs(),
                result.last
            ));
            true
        } else {
            true
        };
        if let (Some((api, id)), true) = (deployment, healthy) {
            deployment_status(api, id, "success", env_url.as_deref(), log_url.as_deref())?;
        }
    }
    Ok(())
}

/// Writes a status of a deployment this run created; earlier ones of the environment
/// become inactive (`auto_inactive`).
fn deployment_status(
    api: &dyn crate::repo::ForgeApi,
    id: u64,
    state: &str,
    environment_url: Option<&str>,
    log_url: Option<&str>,
) -> Result<()> {
    api.set_deployment_status(
        id,
        &crate::repo::DeploymentStatusSpec {
            state,
            description: &format!("gitops-flow: {state}"),
            environment_url,
            log_url,
            auto_inactive: true,
        },
    )
}
