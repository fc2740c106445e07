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
pub mod manifest;
pub mod names;
pub mod repo;
pub mod secret;
pub mod slug;

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;

use crate::actions::Runner;
use crate::cli::{Args, Backend, Event, Inputs};
use crate::commands::{Ctx, Outcome};
use crate::config::Config;
use crate::error::Result;
use crate::repo::Repository;

/// Runs the program and returns its exit code.
pub fn run(argv: Vec<OsString>, env: HashMap<String, String>, now: i64) -> u8 {
    let runner = Runner {
        output_file: env.get("GITHUB_OUTPUT").filter(|s| !s.is_empty()).map(PathBuf::from),
        summary_file: env
            .get("GITHUB_STEP_SUMMARY")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
    };
    // Clap reads INPUT_* through the process environment; `env` is the same snapshot.
    let args = match Args::try_parse_from(argv) {
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
    let secrets: Vec<String> = [
        args.token.clone(),
        args.argocd_token.clone(),
        env.get("GITHUB_TOKEN").cloned(),
    ]
    .into_iter()
    .flatten()
    .filter(|s| !s.is_empty())
    .collect();
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
            let _ = runner.outputs(&Outcome::default().output_pairs());
            e.exit_code()
        }
    }
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
    let config = Config::load(&inputs.path.join(&config_name), &config_name, inputs.config.is_some())?;
    let repo: Box<dyn Repository> = match inputs.backend {
        Backend::Local => Box::new(repo::local::LocalRepo::open(&inputs.path, now)?),
        Backend::GitHub => Box::new(repo::github::GitHubRepo::open(&inputs, env, now)?),
    };
    // One round trip for every ref the command will read (GitHub backend).
    repo.prefetch(&commands::ref_hints(&inputs, &config))?;
    let branch = match inputs.branch.clone().or_else(|| config.branch.clone()) {
        Some(b) => b,
        None => repo.default_branch()?,
    };
    let ctx = Ctx {
        inputs: &inputs,
        config: &config,
        repo: repo.as_ref(),
        event: &event,
        runner,
        branch,
        env,
    };
    runner.group(&format!("gitops-flow {}", inputs.command));
    let result = commands::run(&ctx);
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
