//! gitops-flow: promote service versions through environments in a GitOps repository.
//!
//! `run` is the whole program: it parses flags and `INPUT_*` variables, opens
//! the repository through a backend, runs one command and speaks the runner's
//! protocol (outputs, summary, annotations). `main` only passes in the process
//! environment and the clock.

pub mod actions;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod gates;
pub mod holds;
pub mod manifest;
pub mod names;
pub mod repo;
pub mod secret;
pub mod slug;
mod test_hooks;

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;

use crate::actions::Runner;
use crate::cli::{Args, Backend, Event, Inputs};
use crate::commands::{Ctx, Outcome};
use crate::config::Config;
use crate::error::Result;
use crate::repo::github::GitHubSettings;
use crate::repo::{Forge, Git};

/// Runs the program and returns its exit code.
pub fn run(argv: Vec<OsString>, env: HashMap<String, String>, now: i64) -> u8 {
    let mut runner = Runner {
        output_file: env.get("GITHUB_OUTPUT").filter(|s| !s.is_empty()).map(PathBuf::from),
        summary_file: env
            .get("GITHUB_STEP_SUMMARY")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
        dotenv_file: None,
        on_actions: env.get("GITHUB_ACTIONS").is_some_and(|v| v == "true"),
    };
    // A deliberate crash, so that tests can see the panic hook at work end to end.
    if test_hooks::crash_requested(&env) {
        panic!(
            "test crash requested with token {}",
            env.get("INPUT_TOKEN").map_or("", String::as_str)
        );
    }
    // INPUT_* come from `env`, never from the process environment.
    let args = match Args::parse_with_env(argv, &env) {
        Ok(a) => a,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            let _ = e.print();
            return 0;
        }
        Err(e) => {
            let first = e
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_string();
            runner.error(&format!("{first}; run `gitops-flow --help` for the inputs"), None);
            return 2;
        }
    };
    runner.dotenv_file = args
        .output_dotenv
        .clone()
        .filter(|s| !s.trim().is_empty())
        .map(PathBuf::from);
    let secrets = secrets_of(&[
        args.token.clone(),
        args.argocd_token.clone(),
        env.get("INPUT_ARGOCD_TOKEN").cloned(),
        env.get("GITHUB_TOKEN").cloned(),
    ]);
    for s in &secrets {
        runner.add_mask(s);
    }
    let scrub = |msg: String| secrets.iter().fold(msg, |m, s| m.replace(s.as_str(), "***"));
    match execute(args, &env, &runner, now) {
        Ok(outcome) => {
            if let Err(e) = finish(&runner, &outcome) {
                runner.error(&scrub(format!("cannot write the step outputs: {e}")), None);
                return 1;
            }
            match &outcome.failure {
                Some(f) => {
                    runner.error(&scrub(f.clone()), None);
                    1
                }
                None => 0,
            }
        }
        Err(e) => {
            runner.error(&scrub(e.to_string()), e.place());
            let held = matches!(e, error::Error::Held(_));
            let _ = runner.outputs(
                &Outcome {
                    held,
                    ..Outcome::default()
                }
                .output_pairs(),
            );
            if held {
                let _ = runner.summary(&format!("### gitops-flow: held\n\n⏸️ {}\n", scrub(e.to_string())));
            }
            e.exit_code()
        }
    }
}

/// The values to mask and scrub: each secret as given and trimmed (a pasted
/// trailing newline), longest first so that a longer value is replaced whole.
pub fn secrets_of(values: &[Option<String>]) -> Vec<String> {
    let mut out: Vec<String> = values
        .iter()
        .flatten()
        .flat_map(|s| {
            // Pieces between control characters too: the runner masks line by line.
            let pieces = s
                .split(char::is_control)
                .filter(|p| p.trim().len() >= 4)
                .map(str::to_string);
            [s.clone(), s.trim().to_string()].into_iter().chain(pieces)
        })
        .filter(|s| !s.trim().is_empty())
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// The `::error::` line for a panic: what broke and where, never a secret.
pub fn panic_message(payload: &str, location: Option<String>, secrets: &[String]) -> String {
    let text = secrets
        .iter()
        .fold(payload.to_string(), |m, s| m.replace(s.as_str(), "***"));
    let at = location.map(|l| format!(" at {l}")).unwrap_or_default();
    format!(
        "::error::{}",
        actions::escape_data(&format!(
            "gitops-flow crashed (internal error{at}: {text}); nothing after this point ran, re-run the job and report this at the project's issue tracker"
        ))
    )
}

/// Makes a panic a normal failure: an `::error::` line (token-free) and exit 1.
/// Call once from `main`; `main` catches the unwind and exits 1.
pub fn install_panic_hook(env: &HashMap<String, String>) {
    let secrets = secrets_of(&[
        env.get("INPUT_TOKEN").cloned(),
        env.get("INPUT_ARGOCD-TOKEN").cloned(),
        env.get("INPUT_ARGOCD_TOKEN").cloned(),
        env.get("GITHUB_TOKEN").cloned(),
    ]);
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line()));
        println!("{}", panic_message(&payload, location, &secrets));
    }));
}

fn finish(runner: &Runner, outcome: &Outcome) -> std::io::Result<()> {
    runner.outputs(&outcome.output_pairs())?;
    if !outcome.summary.is_empty() {
        runner.summary(&outcome.summary)?;
    }
    if runner.summary_file.is_none() && !outcome.summary.is_empty() {
        eprintln!("{}", outcome.summary.trim_end());
    }
    Ok(())
}

fn execute(args: Args, env: &HashMap<String, String>, runner: &Runner, now: i64) -> Result<Outcome> {
    let event = Event::load(env)?;
    let inputs = Inputs::resolve(args, env, &event)?;
    if inputs.command == "demo" {
        let keep = env
            .get("GITOPS_FLOW_DEMO_DIR")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        return commands::demo::run(runner, now, keep.as_deref());
    }
    let config_name = inputs.config.clone().unwrap_or_else(|| "gitops-flow.yaml".into());
    crate::names::check_repo_path("config", &config_name)?;
    if inputs.backend == Backend::Git {
        // The environment repository of another project (seed 2's app pipeline):
        // cloned here when `remote` is its URL and `path` is not a checkout yet.
        repo::git::clone_if_missing(&inputs, env)?;
    }
    let config = Config::load(&inputs.path, &config_name, inputs.config.is_some())?;
    // The backend opened, as its two seams: git, and the forge (GitHub's API, the
    // git CLI's push options, or none).
    let local_repo = match inputs.backend {
        Backend::Local => Some(repo::local::LocalRepo::open(&inputs.path, now)?),
        _ => None,
    };
    let github_repo = match inputs.backend {
        Backend::GitHub => Some(repo::github::GitHubRepo::open(github_settings(&inputs, env)?, now)?),
        _ => None,
    };
    let git_repo = match inputs.backend {
        Backend::Git => Some(repo::git::GitRepo::open(&inputs, env, now)?),
        _ => None,
    };
    let (repo, forge): (&dyn Git, &dyn Forge) = match (&local_repo, &github_repo, &git_repo) {
        (Some(l), _, _) => (l, &repo::NoForge),
        (_, Some(g), _) => (g, g),
        (_, _, Some(g)) => (g, g),
        _ => return Err(error::Error::failed("no backend opened")),
    };
    let git_backend = git_repo.as_ref();
    // One round trip for every ref the command will read (GitHub backend).
    repo.prefetch(&commands::read_plan(&inputs, &config, &event))?;
    let branch = match inputs.branch.clone().or_else(|| config.branch.clone()) {
        Some(b) => b,
        None => repo.default_branch()?,
    };
    if let Some(g) = git_backend {
        g.set_main_branch(&branch);
    }
    let ctx = Ctx {
        inputs: &inputs,
        config: &config,
        repo,
        forge,
        event: &event,
        runner,
        branch,
        env,
        now,
    };
    runner.group(&format!("gitops-flow {}", inputs.command));
    let mut result = commands::run(&ctx);
    if let Some(g) = git_backend
        && let Err(e) = g.finish()
    {
        result = match result {
            Ok(mut o) => {
                o.fail(&e.to_string());
                Ok(o)
            }
            Err(first) => Err(first),
        };
    }
    for n in forge.take_notices() {
        runner.notice(&n);
    }
    runner.end_group();
    if inputs.dry_run
        && let Ok(o) = &result
    {
        runner.notice(&format!(
            "dry run: nothing was written{}",
            if o.changed { "" } else { " (and nothing needed writing)" }
        ));
    }
    result.map(|mut o| {
        if inputs.dry_run {
            o.changed = false;
        }
        o
    })
}

/// The GitHub backend's settings from the inputs and the runner's `GITHUB_*` variables
/// (with GitHub.com's defaults); `GITOPS_FLOW_RETRY_BASE_MS` shortens the backoff (tests).
fn github_settings(inputs: &Inputs, env: &HashMap<String, String>) -> Result<GitHubSettings> {
    let repository = inputs.repository.clone().ok_or_else(|| {
        error::Error::input(
            "the github backend needs the repository; set input `repository` (owner/name) or GITHUB_REPOSITORY",
        )
    })?;
    let token = inputs.token.clone().ok_or_else(|| {
        error::Error::input("the github backend needs a token; pass input `token` (default `${{ github.token }}`) or use `backend: local`")
    })?;
    let var = |k: &str| env.get(k).filter(|s| !s.is_empty()).cloned();
    let api_url = var("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
    let graphql_url = var("GITHUB_GRAPHQL_URL").unwrap_or_else(|| format!("{}/graphql", api_url.trim_end_matches('/')));
    let server_url = var("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
    let mut retry = repo::github::retry::RetryPolicy::default();
    if let Some(ms) = env.get("GITOPS_FLOW_RETRY_BASE_MS").and_then(|s| s.parse::<u64>().ok()) {
        retry.base = std::time::Duration::from_millis(ms);
    }
    Ok(GitHubSettings {
        repository,
        token,
        api_url,
        graphql_url,
        server_url,
        retry,
        checkout: inputs.path.clone(),
    })
}
