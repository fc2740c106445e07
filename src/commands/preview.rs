//! `preview`: the transient environment of a labelled pull request, recorded as a
//! GitHub deployment per head commit and gated on the Argo CD application that
//! the ApplicationSet pull-request generator made for it.
//!
//! Runs in the application repository on `pull_request` / `pull_request_target`.
//! Every write is preceded by a look at the pull request as it is now: a run for a
//! head that is no longer the head (or for a label that is gone again) leaves the
//! newer run's deployment alone.

use serde::Deserialize;

use super::{Ctx, Outcome, short};
use crate::error::{Error, Result};
use crate::gates::argocd::{ArgoProbe, Seen};
use crate::gates::{self, Polling};
use crate::repo::{DeploymentInfo, DeploymentSpec, DeploymentStatusSpec};

/// The part of a `pull_request` / `pull_request_target` payload that matters here.
#[derive(Debug, Deserialize)]
struct PullRequestEvent {
    action: String,
    pull_request: EventPull,
    /// `labeled` / `unlabeled`: the label added or removed.
    #[serde(default)]
    label: Option<EventLabel>,
}

#[derive(Debug, Deserialize)]
struct EventPull {
    number: u64,
    head: EventHead,
    labels: Vec<EventLabel>,
}

#[derive(Debug, Deserialize)]
struct EventHead {
    #[serde(rename = "ref")]
    branch: String,
    sha: String,
}

#[derive(Debug, Deserialize)]
struct EventLabel {
    name: String,
}

const KEYS: &str = "{service}, {number}, {branch}, {slug}, {sha} and {short_sha}";

/// The names of one pull request's preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub service: String,
    pub number: u64,
    pub branch: String,
    /// Argo CD's `branch_slug` of the head branch.
    pub slug: String,
    pub sha: String,
    pub environment: String,
    pub url: Option<String>,
    pub app: String,
}

/// Expands a preview template; an unknown `{name}` is an input error naming `input`.
pub fn expand(input: &str, template: &str, vars: &[(&str, &str)]) -> Result<String> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            return Err(Error::input(format!(
                "input `{input}` (`{template}`) has an unclosed `{{`"
            )));
        };
        match vars.iter().find(|(k, _)| *k == &after[..end]) {
            Some((_, v)) => out.push_str(v),
            None => {
                return Err(Error::input(format!(
                    "input `{input}` (`{template}`) uses `{{{}}}`; preview templates take {KEYS}",
                    &after[..end]
                )));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Names {
    /// Expands and checks every name, before anything is written.
    pub fn new(
        service: &str,
        number: u64,
        branch: &str,
        sha: &str,
        environment: Option<&str>,
        url: Option<&str>,
        app: Option<&str>,
    ) -> Result<Names> {
        if !crate::names::is_full_oid(sha) {
            return Err(Error::input(format!(
                "the event's pull_request.head.sha `{}` is not a commit id",
                sha.escape_debug()
            )));
        }
        let slug = crate::slug::branch_slug(branch);
        let number_s = number.to_string();
        let vars = [
            ("service", service),
            ("number", number_s.as_str()),
            ("branch", branch),
            ("slug", slug.as_str()),
            ("sha", sha),
            // Argo CD's `head_short_sha`.
            ("short_sha", &sha[..8]),
        ];
        let template = environment.unwrap_or("preview-{slug}");
        let environment = expand("environment", template, &vars)?;
        if environment.trim().is_empty() || environment.len() > 255 || environment.chars().any(char::is_control) {
            return Err(Error::input(format!(
                "input `environment` (`{template}`) expands to `{}`, which is not a GitHub environment name (1 to 255 characters, no control characters)",
                environment.escape_debug()
            )));
        }
        let url = match url {
            Some(t) => {
                let u = expand("url", t, &vars)?;
                let ok = (u.starts_with("https://") || u.starts_with("http://"))
                    && !u.chars().any(|c| c.is_whitespace() || c.is_control());
                if !ok {
                    return Err(Error::input(format!(
                        "input `url` (`{t}`) expands to `{}`, which is not an http(s) URL; write it like `https://{{slug}}.example.com`",
                        u.escape_debug()
                    )));
                }
                Some(u)
            }
            None => None,
        };
        let app_t = app.unwrap_or("{service}-pr-{number}");
        let app = expand("argocd-app", app_t, &vars)?;
        let k8s_name = !app.is_empty()
            && app.len() <= 253
            && app
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !app.starts_with(['-', '.'])
            && !app.ends_with(['-', '.']);
        if !k8s_name {
            return Err(Error::input(format!(
                "input `argocd-app` (`{app_t}`) expands to `{}`, which cannot be an Argo CD application name (lower-case letters, digits, `-` and `.`); use {{slug}} rather than {{branch}}",
                app.escape_debug()
            )));
        }
        Ok(Names {
            service: service.to_string(),
            number,
            branch: branch.to_string(),
            slug,
            sha: sha.to_string(),
            environment,
            url,
            app,
        })
    }
}

enum Plan {
    Deploy,
    Teardown(String),
    Skip(String),
}

fn plan(ev: &PullRequestEvent, label: &str) -> Plan {
    let carries = ev.pull_request.labels.iter().any(|l| l.name == label);
    let event_label = ev.label.as_ref().map(|l| l.name.as_str());
    let n = ev.pull_request.number;
    match ev.action.as_str() {
        "closed" => Plan::Teardown(format!("pull request #{n} was closed")),
        "unlabeled" if event_label == Some(label) => Plan::Teardown(format!("label `{label}` was removed")),
        "labeled" if event_label == Some(label) => Plan::Deploy,
        "labeled" | "unlabeled" => Plan::Skip(format!(
            "label `{}` is not `{label}`; the preview is not affected",
            event_label.unwrap_or_default()
        )),
        "opened" | "reopened" | "synchronize" if carries => Plan::Deploy,
        "opened" | "reopened" | "synchronize" => Plan::Skip(format!(
            "pull request #{n} does not carry label `{label}`: no preview (add the label to get one)"
        )),
        other => Plan::Skip(format!(
            "`{other}` does not change previews; preview acts on opened, reopened, labeled, synchronize, unlabeled and closed"
        )),
    }
}

/// The run's page, for `log_url`.
fn run_url(ctx: &Ctx<'_>) -> Option<String> {
    let get = |k: &str| ctx.env.get(k).filter(|v| !v.is_empty());
    match (get("GITHUB_SERVER_URL"), get("GITHUB_REPOSITORY"), get("GITHUB_RUN_ID")) {
        (Some(s), Some(r), Some(id)) => Some(format!("{}/{r}/actions/runs/{id}", s.trim_end_matches('/'))),
        _ => None,
    }
}

pub fn run(ctx: &Ctx<'_>) -> Result<Outcome> {
    if !matches!(ctx.event.name.as_str(), "pull_request" | "pull_request_target") {
        return Err(Error::input(format!(
            "`preview` runs on pull_request or pull_request_target events, not `{}`; see workflows-examples/preview.yml",
            if ctx.event.name.is_empty() {
                "none (GITHUB_EVENT_NAME is not set)"
            } else {
                ctx.event.name.as_str()
            }
        )));
    }
    let ev: PullRequestEvent = serde_json::from_value(ctx.event.payload.clone()).map_err(|e| {
        Error::input(format!(
            "the pull_request event payload at GITHUB_EVENT_PATH is incomplete: {e}"
        ))
    })?;
    if ctx.forge.api().is_none() {
        return Err(Error::input(
            "`preview` reads the pull request and records GitHub deployments: use `backend: github`",
        ));
    }
    let label = ctx.inputs.label.as_str();
    let service = match &ctx.inputs.service {
        Some(s) => s.clone(),
        None => {
            let name = ctx
                .inputs
                .repository
                .as_deref()
                .and_then(|r| r.split_once('/'))
                .map(|(_, n)| n.to_string())
                .unwrap_or_default();
            crate::names::check_ref_component("service (the repository name)", &name)
                .map_err(|e| Error::input(format!("{e}; pass `service`")))?;
            name
        }
    };
    let i = ctx.inputs;
    let names = Names::new(
        &service,
        ev.pull_request.number,
        &ev.pull_request.head.branch,
        &ev.pull_request.head.sha.to_lowercase(),
        i.environment.as_deref(),
        i.url.as_deref(),
        i.argocd_app.as_deref(),
    )?;
    // The gate's client and names are checked now: after the first write a bad
    // input could only be reported as exit 1.
    let probe = match &i.argocd_server {
        Some(server) => {
            let token = i.argocd_token.as_ref().ok_or_else(|| {
                Error::input("`argocd-server` is set but `argocd-token` is not; pass the Argo CD API token")
            })?;
            Some(ArgoProbe::new(server, token, &names.app, names.sha.clone(), ctx.repo)?.for_preview())
        }
        None => None,
    };
    let mut out = Outcome {
        service: Some(service.clone()),
        environment: Some(names.environment.clone()),
        url: names.url.clone(),
        revision: Some(names.sha.clone()),
        branch: Some(names.branch.clone()),
        pull_request_number: Some(names.number),
        ..Outcome::default()
    };
    out.summary = format!(
        "### gitops-flow preview `{}`\n\npull request #{} `{}` at {} (slug `{}`)\n\n",
        names.environment,
        names.number,
        names.branch,
        ctx.link_commit(&names.sha),
        names.slug
    );
    match plan(&ev, label) {
        Plan::Skip(why) => skip(ctx, &mut out, &why),
        Plan::Deploy => deploy(ctx, &names, probe, &mut out)?,
        Plan::Teardown(why) => teardown(ctx, &names, &why, &mut out)?,
    }
    Ok(out)
}

fn skip(ctx: &Ctx<'_>, out: &mut Outcome, why: &str) {
    ctx.runner.notice(&format!("preview: nothing to do: {why}"));
    out.summary.push_str(&format!("Nothing to do: {why}.\n"));
}

/// Why this run must not write (any more), judged from the pull request as it is now.
fn superseded(ctx: &Ctx<'_>, names: &Names) -> Result<Option<String>> {
    let label = &ctx.inputs.label;
    let pr = ctx.forge_api()?.pull_request_state(names.number)?;
    Ok(if !pr.open {
        Some(format!("pull request #{} is closed now", names.number))
    } else if !pr.labels.iter().any(|l| l == label) {
        Some(format!(
            "pull request #{} no longer carries label `{label}`",
            names.number
        ))
    } else if !pr.head_sha.eq_ignore_ascii_case(&names.sha) {
        Some(format!(
            "pull request #{} is at {} now and this run is for {}; the run for the new head records it",
            names.number,
            short(&pr.head_sha),
            short(&names.sha)
        ))
    } else {
        None
    })
}

fn status(ctx: &Ctx<'_>, id: u64, state: &str, description: &str, environment_url: Option<&str>) -> Result<()> {
    let log_url = run_url(ctx);
    ctx.forge_api()?.set_deployment_status(
        id,
        &DeploymentStatusSpec {
            state,
            description,
            environment_url,
            log_url: log_url.as_deref(),
            auto_inactive: false,
        },
    )
}

/// Marks the active deployments among `list` (other than `keep`) inactive.
fn retire(ctx: &Ctx<'_>, list: &[DeploymentInfo], keep: Option<u64>, why: &str, out: &mut Outcome) -> Result<Vec<u64>> {
    let mut done = Vec::new();
    for d in list.iter().filter(|d| Some(d.id) != keep && d.is_active()) {
        status(ctx, d.id, "inactive", why, None)?;
        done.push(d.id);
        out.changed = true;
    }
    Ok(done)
}

fn ids(list: &[u64]) -> String {
    list.iter().map(|i| format!("#{i}")).collect::<Vec<_>>().join(", ")
}

fn deploy(ctx: &Ctx<'_>, names: &Names, probe: Option<ArgoProbe<'_>>, out: &mut Outcome) -> Result<()> {
    if let Some(why) = superseded(ctx, names)? {
        skip(ctx, out, &why);
        return Ok(());
    }
    let env = &names.environment;
    let existing = ctx.forge_api()?.list_deployments(env)?;
    let mine = existing
        .iter()
        .find(|d| d.sha.eq_ignore_ascii_case(&names.sha))
        .cloned();
    if ctx.inputs.dry_run {
        let older = existing.iter().filter(|d| d.sha != names.sha && d.is_active()).count();
        out.deployment_id = mine.as_ref().map(|d| d.id);
        out.state = mine.as_ref().and_then(|d| d.state.clone());
        out.changed = mine.as_ref().is_none_or(|d| d.state.as_deref() != Some("success")) || older > 0;
        out.summary.push_str(&format!(
            "Would {} the deployment of {} to `{env}`, gate it on Argo CD application `{}`, and mark {older} older deployment(s) inactive.\n",
            if mine.is_some() { "reuse" } else { "create" },
            short(&names.sha),
            names.app
        ));
        return Ok(());
    }
    let id = match &mine {
        Some(d) => d.id,
        None => {
            let spec = DeploymentSpec {
                sha: names.sha.clone(),
                environment: env.clone(),
                description: format!("gitops-flow preview of #{} ({})", names.number, names.branch),
                payload: serde_json::json!({
                    "service": names.service,
                    "number": names.number,
                    "branch": names.branch,
                    "command": "preview",
                }),
                production: false,
                transient: true,
            };
            let id = ctx.forge_api()?.create_deployment(&spec)?;
            out.changed = true;
            id
        }
    };
    out.deployment_id = Some(id);
    out.summary.push_str(&format!(
        "Deployment {id} of {} to `{env}`{}.\n\n",
        short(&names.sha),
        if mine.is_some() { " (recorded before)" } else { "" }
    ));
    // A push, a removed label or a close may have come in while this run listed
    // and created: then it must not touch the newer run's deployments.
    if let Some(why) = superseded(ctx, names)? {
        if mine.is_none() || mine.as_ref().is_some_and(DeploymentInfo::is_active) {
            status(ctx, id, "inactive", &why, None)?;
            out.changed = true;
        }
        out.state = Some("inactive".into());
        skip(ctx, out, &why);
        return Ok(());
    }
    let gone = retire(
        ctx,
        &existing,
        Some(id),
        &format!("superseded by {} of #{}", short(&names.sha), names.number),
        out,
    )?;
    if !gone.is_empty() {
        out.summary
            .push_str(&format!("Older deployments marked inactive: {}.\n\n", ids(&gone)));
    }
    if mine.as_ref().and_then(|d| d.state.as_deref()) == Some("success") {
        ctx.runner.notice(&format!(
            "preview: deployment {id} of {} is recorded success already",
            short(&names.sha)
        ));
        out.state = Some("success".into());
        out.summary
            .push_str("Recorded **success** before; nothing to gate again.\n");
        return Ok(());
    }
    if mine.as_ref().and_then(|d| d.state.as_deref()) != Some("in_progress") {
        let waiting = match &probe {
            Some(p) => format!("waiting for Argo CD application {} at {}", p.app(), short(&names.sha)),
            None => "recording the preview".to_string(),
        };
        status(ctx, id, "in_progress", &waiting, None)?;
        out.changed = true;
    }
    let (state, detail) = gate(ctx, names, probe);
    if let Some(why) = superseded(ctx, names)? {
        status(ctx, id, "inactive", &why, None)?;
        out.changed = true;
        out.state = Some("inactive".into());
        skip(ctx, out, &why);
        return Ok(());
    }
    let url = if state == "success" { names.url.as_deref() } else { None };
    status(ctx, id, state, &detail, url)?;
    out.changed = true;
    out.state = Some(state.into());
    // A run for an older head may have created its deployment after our listing.
    let late = retire(
        ctx,
        &ctx.forge_api()?.list_deployments(env)?,
        Some(id),
        &format!("superseded by {} of #{}", short(&names.sha), names.number),
        out,
    )?;
    if !late.is_empty() {
        out.summary
            .push_str(&format!("Older deployments marked inactive: {}.\n\n", ids(&late)));
    }
    let icon = if state == "success" { "✅" } else { "❌" };
    out.summary.push_str(&format!("{icon} **{state}**: {detail}\n"));
    if let Some(u) = &names.url
        && state == "success"
    {
        out.summary.push_str(&format!("\nPreview: {u}\n"));
    }
    if state != "success" {
        out.failure = Some(format!(
            "preview `{env}` of #{} at {}: {state}: {detail}",
            names.number,
            short(&names.sha)
        ));
    }
    Ok(())
}

/// The Argo CD gate at the head commit: `success`, `failure` or `error`, and why.
fn gate(ctx: &Ctx<'_>, names: &Names, probe: Option<ArgoProbe<'_>>) -> (&'static str, String) {
    let Some(mut probe) = probe else {
        ctx.runner.notice(
            "preview: no `argocd-server` given, so nothing was checked: the deployment is recorded success at once; pass `argocd-server` and `argocd-token` to gate it on the Argo CD application",
        );
        return ("success", "recorded without a health check (no argocd-server)".into());
    };
    let polling = Polling::from_env(ctx.env);
    match gates::wait(ctx.runner, &mut probe, ctx.inputs.timeout, &polling) {
        Ok(r) if r.healthy => ("success", format!("Healthy and Synced at {}", short(&names.sha))),
        Ok(r) => match probe.seen() {
            Seen::App => ("failure", r.last),
            Seen::Missing | Seen::Nothing => (
                "error",
                format!(
                    "Argo CD application `{}` did not appear within {}s; check the ApplicationSet's label filter and `argocd-app` (default {{service}}-pr-{{number}})",
                    names.app,
                    ctx.inputs.timeout.as_secs()
                ),
            ),
            Seen::ApiError => ("error", r.last),
        },
        Err(e) => ("error", e.to_string()),
    }
}

fn teardown(ctx: &Ctx<'_>, names: &Names, why: &str, out: &mut Outcome) -> Result<()> {
    let label = &ctx.inputs.label;
    let pr = ctx.forge_api()?.pull_request_state(names.number)?;
    if pr.open && pr.labels.iter().any(|l| l == label) {
        skip(
            ctx,
            out,
            &format!(
                "{why}, but pull request #{} is open and carries `{label}` again; the newer run keeps its preview",
                names.number
            ),
        );
        return Ok(());
    }
    let existing = ctx.forge_api()?.list_deployments(&names.environment)?;
    out.deployment_id = existing.first().map(|d| d.id);
    out.state = Some("inactive".into());
    if ctx.inputs.dry_run {
        let n = existing.iter().filter(|d| d.is_active()).count();
        out.changed = n > 0;
        out.summary
            .push_str(&format!("{why}: would mark {n} active deployment(s) inactive.\n"));
        return Ok(());
    }
    let gone = retire(ctx, &existing, None, why, out)?;
    if gone.is_empty() {
        out.summary
            .push_str(&format!("{why}: no active deployment of `{}`.\n", names.environment));
    } else {
        out.summary
            .push_str(&format!("{why}: marked inactive: {}.\n", ids(&gone)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn defaults_and_templates() {
        let n = Names::new(
            "web",
            7,
            "Feature/Login_Page",
            SHA,
            None,
            Some("https://{slug}.acme.inc"),
            None,
        )
        .unwrap();
        assert_eq!(n.slug, "feature-login-page");
        assert_eq!(n.environment, "preview-feature-login-page");
        assert_eq!(n.url.as_deref(), Some("https://feature-login-page.acme.inc"));
        assert_eq!(n.app, "web-pr-7");
        let n = Names::new(
            "web",
            7,
            "x",
            SHA,
            Some("pr-{number}-{short_sha}"),
            None,
            Some("{service}-{slug}-{short_sha}"),
        )
        .unwrap();
        assert_eq!(n.environment, "pr-7-01234567");
        assert_eq!(n.app, "web-x-01234567");
    }

    #[test]
    fn bad_templates_are_input_errors() {
        for (env, url, app) in [
            (Some("preview-{nope}"), None, None),
            (Some("preview-{slug"), None, None),
            (None, Some("ftp://{slug}"), None),
            (None, Some("{slug}.acme.inc"), None),
            (None, None, Some("{branch}")),
        ] {
            let e = Names::new("web", 7, "Feature/X", SHA, env, url, app).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{e}");
        }
        assert!(Names::new("web", 7, "x", "abc", None, None, None).is_err());
    }
}
