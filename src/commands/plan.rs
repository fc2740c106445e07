//! The read plan: what a command will read, derived from its inputs, so that the
//! GitHub backend reads it in one query.

use super::Ctx;
use crate::cli::{Event, Inputs};
use crate::config::{Config, Environment};
use crate::error::Result;
use crate::repo::ReadPlan;

impl Ctx<'_> {
    /// Reads the main branch and the tags of `service` in `envs` in one go.
    /// Reads what a command needs for `service` in `envs` at once (see [`plan_for`]);
    /// what was read at start-up already is not read again.
    pub fn prefetch(&self, service: &str, envs: &[&Environment]) -> Result<()> {
        let plan = plan_for(self.config, service, envs, Some(self.main_ref()), None);
        self.repo.prefetch(&plan)
    }
}

/// What a command will read, known from the inputs alone, so that the GitHub
/// backend reads it (and the default branch) in one query: the one place that
/// derives the reads of every command.
pub fn read_plan(inputs: &Inputs, config: &Config, event: &Event) -> ReadPlan {
    let mut plan = reads(inputs, config, event);
    // `status` with the commit-status gate looks at the commit the history read finds.
    plan.checks = inputs.command == "status" && inputs.argocd_server.is_none();
    plan
}

fn reads(inputs: &Inputs, config: &Config, event: &Event) -> ReadPlan {
    if inputs.command == "preview" {
        // Runs in the application repository: no gitops-flow refs to read.
        return ReadPlan::default();
    }
    let main = inputs
        .branch
        .as_ref()
        .or(config.branch.as_ref())
        .map(|b| format!("refs/heads/{b}"));
    // `deploy` after a merged stage pull request names its service in the metadata.
    let from_event = event
        .payload
        .pointer("/pull_request/body")
        .and_then(|b| b.as_str())
        .and_then(super::Meta::parse)
        .map(|m| m.service);
    let Some(service) = inputs.service.as_ref().or(from_event.as_ref()) else {
        return ReadPlan {
            refs: main.iter().cloned().collect(),
            main,
            ..ReadPlan::default()
        };
    };
    if crate::names::check_ref_component("service", service).is_err() {
        return ReadPlan {
            refs: main.iter().cloned().collect(),
            main,
            ..ReadPlan::default()
        };
    }
    let envs: Vec<&Environment> = config.environments.iter().collect();
    plan_for(config, service, &envs, main, Some(inputs.command.as_str()))
}

/// The reads of a command on `service` in `envs`: the main branch; per tag
/// environment its tag and rollback tag, the chart at their commits and whether they
/// are on the main branch; per file environment its pull-request branch; per branch
/// environment its branch and its version files there.
pub fn plan_for(
    config: &Config,
    service: &str,
    envs: &[&Environment],
    main: Option<String>,
    command: Option<&str>,
) -> ReadPlan {
    let mut plan = ReadPlan {
        refs: main.iter().cloned().collect(),
        main,
        ..ReadPlan::default()
    };
    for env in envs {
        super::tracks::of(env).plan(config, env, service, &mut plan);
    }
    if command == Some("stage") {
        plan.refs.push(format!("refs/heads/gitops-flow/stage/{service}"));
    }
    let mut seen = std::collections::HashSet::new();
    plan.refs.retain(|r| seen.insert(r.clone()));
    plan
}
