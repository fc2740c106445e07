//! One parser for CLI flags and the runner's `INPUT_*` variables, with the event
//! payload (`GITHUB_EVENT_PATH`) as the last fallback.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::PossibleValue;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// The commands, with the one line each that `--help` shows.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        "stage",
        "set a service's version at the start of the pipeline (pull request or direct commit)",
    ),
    (
        "deploy",
        "after a stage pull request merged: move the first environment to the merged revision",
    ),
    (
        "promote",
        "move a service from one environment to the next (tag move, pull request or commit)",
    ),
    (
        "rollback",
        "put an environment of a service back to its previous (or a given) revision or version",
    ),
    (
        "status",
        "health gate: wait until a service is healthy in an environment at the expected revision",
    ),
    (
        "preview",
        "pull_request events: GitHub deployment of a labelled pull request's preview, gated on Argo CD",
    ),
    (
        "lock",
        "hold a service (or, without `service`, every service) in an environment: stage, deploy and promote refuse to move it",
    ),
    ("unlock", "remove a hold that `lock` recorded"),
    (
        "report",
        "what runs where: services x environments as a table and as JSON",
    ),
    (
        "demo",
        "run the whole tag flow on a throw-away local repository and show every tag move",
    ),
];

fn command_values() -> Vec<PossibleValue> {
    COMMANDS.iter().map(|(n, h)| PossibleValue::new(*n).help(*h)).collect()
}

/// Raw inputs: each is a `--flag` and an `INPUT_<NAME>` variable (hyphens kept).
#[derive(Debug, Parser, Default)]
#[command(name = "gitops-flow", version, disable_version_flag = true, about = "Promote service versions through environments in a GitOps repository.", long_about = None)]
pub struct Args {
    /// Print the version
    #[arg(short = 'V', long = "print-version", action = clap::ArgAction::Version)]
    pub print_version: Option<bool>,
    /// What to do
    #[arg(env = "INPUT_COMMAND", value_parser = clap::builder::PossibleValuesParser::new(command_values()), hide_env = true)]
    pub command: Option<String>,
    /// Service to act on
    #[arg(long, env = "INPUT_SERVICE", hide_env = true)]
    pub service: Option<String>,
    /// Version to stage or roll back to (`1.2.3`, optionally `@sha256:<digest>`)
    #[arg(long, env = "INPUT_VERSION", hide_env = true)]
    pub version: Option<String>,
    /// Environment to promote from (default: the first)
    #[arg(long, env = "INPUT_FROM", hide_env = true)]
    pub from: Option<String>,
    /// Environment to promote to (default: the one after `from`)
    #[arg(long, env = "INPUT_TO", hide_env = true)]
    pub to: Option<String>,
    /// Environment for rollback and status (default: the last)
    #[arg(long, env = "INPUT_ENVIRONMENT", hide_env = true)]
    pub environment: Option<String>,
    /// Revision to deploy or roll back to
    #[arg(long, env = "INPUT_REVISION", hide_env = true)]
    pub revision: Option<String>,
    /// The repository checkout (default: GITHUB_WORKSPACE, else the current directory)
    #[arg(long, env = "INPUT_PATH", hide_env = true)]
    pub path: Option<String>,
    /// Config file, relative to `path` (default: gitops-flow.yaml; optional)
    #[arg(long, env = "INPUT_CONFIG", hide_env = true)]
    pub config: Option<String>,
    /// GitHub token (github backend)
    #[arg(long, env = "INPUT_TOKEN", hide_env = true)]
    pub token: Option<String>,
    /// owner/name (default: GITHUB_REPOSITORY)
    #[arg(long, env = "INPUT_REPOSITORY", hide_env = true)]
    pub repository: Option<String>,
    /// Main branch (default: the repository's default branch)
    #[arg(long, env = "INPUT_BRANCH", hide_env = true)]
    pub branch: Option<String>,
    /// `github` (default in Actions) or `local` (default on the CLI)
    #[arg(long, env = "INPUT_BACKEND", hide_env = true)]
    pub backend: Option<String>,
    /// Compute and report, write nothing
    #[arg(long = "dry-run", env = "INPUT_DRY-RUN", hide_env = true, num_args = 0..=1, default_missing_value = "true")]
    pub dry_run: Option<String>,
    /// Enable auto-merge on pull requests opened
    #[arg(long = "auto-merge", env = "INPUT_AUTO-MERGE", hide_env = true, num_args = 0..=1, default_missing_value = "true")]
    pub auto_merge: Option<String>,
    /// Comma-separated labels for pull requests opened
    #[arg(long, env = "INPUT_LABELS", hide_env = true)]
    pub labels: Option<String>,
    /// file mode rollback: `commit` (default) or `pull-request`
    #[arg(long = "rollback-via", env = "INPUT_ROLLBACK-VIA", hide_env = true)]
    pub rollback_via: Option<String>,
    /// Allow deploying revisions not reachable from the main branch
    #[arg(long = "allow-unmerged", env = "INPUT_ALLOW-UNMERGED", hide_env = true, num_args = 0..=1, default_missing_value = "true")]
    pub allow_unmerged: Option<String>,
    /// Run the status gate after a move
    #[arg(long, env = "INPUT_WAIT", hide_env = true, num_args = 0..=1, default_missing_value = "true")]
    pub wait: Option<String>,
    /// Gate timeout: seconds, or with a unit (`90s`, `5m`); default 300
    #[arg(long, env = "INPUT_TIMEOUT", hide_env = true)]
    pub timeout: Option<String>,
    /// Argo CD server URL
    #[arg(long = "argocd-server", env = "INPUT_ARGOCD-SERVER", hide_env = true)]
    pub argocd_server: Option<String>,
    /// Argo CD token
    #[arg(long = "argocd-token", env = "INPUT_ARGOCD-TOKEN", hide_env = true)]
    pub argocd_token: Option<String>,
    /// Argo CD application name (default {service}-{env})
    #[arg(long = "argocd-app", env = "INPUT_ARGOCD-APP", hide_env = true)]
    pub argocd_app: Option<String>,
    /// Glob of commit-status / check-run names that must succeed
    #[arg(long = "status-context", env = "INPUT_STATUS-CONTEXT", hide_env = true)]
    pub status_context: Option<String>,
    /// Roll the environment back when the gate fails
    #[arg(long = "rollback-on-failure", env = "INPUT_ROLLBACK-ON-FAILURE", hide_env = true, num_args = 0..=1, default_missing_value = "true")]
    pub rollback_on_failure: Option<String>,
    /// Record GitHub deployments and their statuses
    #[arg(long, env = "INPUT_DEPLOYMENTS", hide_env = true, num_args = 0..=1, default_missing_value = "true")]
    pub deployments: Option<String>,
    /// preview: the pull-request label that asks for a preview (default `preview`)
    #[arg(long, env = "INPUT_LABEL", hide_env = true)]
    pub label: Option<String>,
    /// preview: environment URL template (`https://{slug}.example.com`)
    #[arg(long, env = "INPUT_URL", hide_env = true)]
    pub url: Option<String>,
    /// git backend: the remote to fetch from and push to, a name or a URL (default `origin`)
    #[arg(long, env = "INPUT_REMOTE", hide_env = true)]
    pub remote: Option<String>,
    /// git backend: `gitlab` (merge requests by push options) or `none` (default: `gitlab` in GitLab CI)
    #[arg(long, env = "INPUT_FORGE", hide_env = true)]
    pub forge: Option<String>,
    /// Also write the outputs as a dotenv file (GitLab CI's `artifacts:reports:dotenv`)
    #[arg(long = "output-dotenv", env = "INPUT_OUTPUT-DOTENV", hide_env = true)]
    pub output_dotenv: Option<String>,
    /// Ask Argo CD to sync the application after a move (manual-sync environments)
    #[arg(long, env = "INPUT_SYNC", hide_env = true, num_args = 0..=1, default_missing_value = "true")]
    pub sync: Option<String>,
    /// lock: why the environment is held (shown to whoever finds it held)
    #[arg(long, env = "INPUT_REASON", hide_env = true)]
    pub reason: Option<String>,
}

impl Args {
    /// Parses `argv` with each input's `INPUT_<NAME>` variable read from `env`, not
    /// from the process environment (clap's own `env` reads the process): a flag on
    /// the command line wins over its variable, as with clap's `env`.
    pub fn parse_with_env(argv: Vec<OsString>, env: &HashMap<String, String>) -> Result<Args, clap::Error> {
        let cmd = Args::command();
        // (id, long flag or None for the positional command, variable)
        let vars: Vec<(String, Option<String>, String)> = cmd
            .get_arguments()
            .filter_map(|a| {
                let var = a.get_env()?.to_str()?.to_string();
                Some((a.get_id().to_string(), a.get_long().map(String::from), var))
            })
            .collect();
        let cmd = cmd.mut_args(|a| a.env(None));
        let given = cmd.clone().try_get_matches_from(argv.iter())?;
        let mut flags: Vec<OsString> = Vec::new();
        let mut positional: Vec<OsString> = Vec::new();
        for (id, long, var) in vars {
            if given.value_source(&id) == Some(ValueSource::CommandLine) {
                continue;
            }
            let Some(value) = env.get(&var) else { continue };
            match long {
                Some(l) => flags.push(format!("--{l}={value}").into()),
                None => positional.push(value.into()),
            }
        }
        let mut argv = argv.into_iter();
        let mut full: Vec<OsString> = argv.next().into_iter().collect();
        full.extend(flags);
        full.extend(argv);
        if !positional.is_empty() {
            full.push("--".into());
            full.extend(positional);
        }
        let matches = cmd.try_get_matches_from(full)?;
        Args::from_arg_matches(&matches)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    GitHub,
    /// Any git host: gix in the checkout, published with `git push`.
    Git,
}

/// Where the `git` backend's pull requests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    /// GitLab: merge requests opened and updated by push options.
    GitLab,
    /// Push the branch and report the pull request to open.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackVia {
    Commit,
    PullRequest,
}

/// Inputs after defaults, event fallback and validation.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub command: String,
    pub service: Option<String>,
    pub version: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub environment: Option<String>,
    pub revision: Option<String>,
    pub path: PathBuf,
    pub config: Option<String>,
    pub token: Option<Secret>,
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub backend: Backend,
    pub dry_run: bool,
    pub auto_merge: bool,
    pub labels: Vec<String>,
    pub rollback_via: RollbackVia,
    pub allow_unmerged: bool,
    pub wait: bool,
    pub timeout: Duration,
    pub argocd_server: Option<String>,
    pub argocd_token: Option<Secret>,
    pub argocd_app: Option<String>,
    pub status_context: Option<String>,
    pub rollback_on_failure: bool,
    pub deployments: bool,
    /// preview: the label that asks for a preview.
    pub label: String,
    /// preview: the environment URL template.
    pub url: Option<String>,
    /// git backend: remote name or URL.
    pub remote: String,
    /// git backend: where pull requests go.
    pub forge: Forge,
    /// Sync the Argo CD application after a move (also `argocd-sync` per environment).
    pub sync: bool,
    /// lock: why.
    pub reason: Option<String>,
}

/// The triggering event (`GITHUB_EVENT_NAME`, `GITHUB_EVENT_PATH`).
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub name: String,
    pub payload: Value,
    /// The text of every number among `client_payload.*` and `inputs.*`, as the
    /// payload spelled it (`1.10` stays `1.10`, where `Value` would say `1.1`).
    pub number_text: HashMap<String, String>,
}

/// The two sections of a payload that carry inputs, kept as raw text.
#[derive(serde::Deserialize)]
struct RawSections<'a> {
    #[serde(borrow, default)]
    client_payload: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    inputs: Option<&'a serde_json::value::RawValue>,
}

/// `section.name` -> the number's text, for the numbers of both sections.
fn number_texts(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let Ok(raw) = serde_json::from_str::<RawSections<'_>>(text) else {
        return out;
    };
    for (section, value) in [("client_payload", raw.client_payload), ("inputs", raw.inputs)] {
        let Some(value) = value else { continue };
        let Ok(map) = serde_json::from_str::<HashMap<String, &serde_json::value::RawValue>>(value.get()) else {
            continue;
        };
        for (name, v) in map {
            let t = v.get().trim();
            if t.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
                out.insert(format!("{section}.{name}"), t.to_string());
            }
        }
    }
    out
}

impl Event {
    pub fn load(env: &HashMap<String, String>) -> Result<Event> {
        let name = env.get("GITHUB_EVENT_NAME").cloned().unwrap_or_default();
        let (payload, number_text) = match env.get("GITHUB_EVENT_PATH").filter(|p| !p.is_empty()) {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::input(format!("cannot read the event payload at GITHUB_EVENT_PATH ({e})")))?;
                let payload = serde_json::from_str(&text)
                    .map_err(|e| Error::input(format!("the event payload at GITHUB_EVENT_PATH is not JSON ({e})")))?;
                (payload, number_texts(&text))
            }
            None => (Value::Null, HashMap::new()),
        };
        // GitLab CI: the pipeline source is the event (`push`, `web`, `schedule`, ...)
        // and the push's before/after commits are its payload.
        if name.is_empty()
            && payload.is_null()
            && let Some(source) = env.get("CI_PIPELINE_SOURCE").filter(|s| !s.is_empty())
        {
            let mut p = serde_json::Map::new();
            for (key, var) in [("before", "CI_COMMIT_BEFORE_SHA"), ("after", "CI_COMMIT_SHA")] {
                if let Some(v) = env.get(var).filter(|v| !v.is_empty()) {
                    p.insert(key.into(), Value::String(v.clone()));
                }
            }
            return Ok(Event {
                name: source.clone(),
                payload: Value::Object(p),
                number_text,
            });
        }
        Ok(Event {
            name,
            payload,
            number_text,
        })
    }

    /// A string input carried by the event: `client_payload.<name>` of a
    /// repository_dispatch, `inputs.<name>` of a workflow_dispatch. A number keeps
    /// the payload's spelling of it.
    pub fn input(&self, name: &str) -> Option<String> {
        let section = match self.name.as_str() {
            "repository_dispatch" => "client_payload",
            "workflow_dispatch" | "workflow_call" => "inputs",
            _ if self.payload.get("client_payload").is_some() => "client_payload",
            _ => "inputs",
        };
        match self.payload.get(section)?.get(name)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(
                self.number_text
                    .get(&format!("{section}.{name}"))
                    .cloned()
                    .unwrap_or_else(|| n.to_string()),
            ),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// The pull request of a `pull_request` event.
    pub fn pull_request(&self) -> Option<&Value> {
        if self.name.starts_with("pull_request") {
            self.payload.get("pull_request")
        } else {
            None
        }
    }
}

fn parse_bool(name: &str, v: Option<String>) -> Result<bool> {
    match v.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(false),
        Some("true" | "yes" | "1" | "on") => Ok(true),
        Some("false" | "no" | "0" | "off") => Ok(false),
        Some(other) => Err(Error::input(format!(
            "input `{name}` is `{other}`; use `true` or `false`"
        ))),
    }
}

/// `300`, `90s`, `5m`, `1h` to a duration.
pub fn parse_duration(name: &str, s: &str) -> Result<Duration> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        _ => (s, 1),
    };
    let secs = num.trim().parse::<u64>().ok().and_then(|n| n.checked_mul(mult));
    match secs {
        Some(n) if n <= MAX_DURATION_SECS => Ok(Duration::from_secs(n)),
        Some(_) | None if num.trim().bytes().all(|b| b.is_ascii_digit()) && !num.trim().is_empty() => {
            Err(Error::input(format!(
                "input `{name}` is `{s}`, longer than 24 hours; give at most `24h` (`86400`)"
            )))
        }
        _ => Err(Error::input(format!(
            "input `{name}` is `{s}`; give seconds (`300`) or a number with a unit (`90s`, `5m`)"
        ))),
    }
}

/// The longest duration an input may ask for: a day (a GitHub-hosted job stops after six hours).
const MAX_DURATION_SECS: u64 = 24 * 3600;

/// A token input: surrounding whitespace (a pasted newline) is dropped; any other
/// control character is refused without showing the value.
fn secret(name: &str, value: Option<String>) -> Result<Option<Secret>> {
    let Some(value) = value else { return Ok(None) };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if let Some(pos) = trimmed.chars().position(char::is_control) {
        return Err(Error::input(format!(
            "input `{name}` contains a control character (at character {}); set the secret again without line breaks or other control characters",
            pos + 1
        )));
    }
    Ok(Some(Secret::new(trimmed)))
}

impl Inputs {
    /// Applies "empty means not given", the event fallback and defaults.
    pub fn resolve(args: Args, env: &HashMap<String, String>, event: &Event) -> Result<Inputs> {
        let clean = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let ev = |v: Option<String>, name: &str| clean(v).or_else(|| event.input(name));
        let command = clean(args.command)
            .or_else(|| event.input("command"))
            .ok_or_else(|| Error::input("no command given; pass one of stage, deploy, promote, rollback, status, preview, lock, unlock, report, demo (input `command`)"))?;
        if !COMMANDS.iter().any(|(n, _)| *n == command) {
            return Err(Error::input(format!(
                "unknown command `{command}`; use one of stage, deploy, promote, rollback, status, preview, lock, unlock, report, demo"
            )));
        }
        let on_actions = env.get("GITHUB_ACTIONS").is_some_and(|v| v == "true");
        let on_gitlab = env.get("GITLAB_CI").is_some_and(|v| v == "true")
            || env.get("CI_SERVER_URL").is_some_and(|v| !v.trim().is_empty());
        let backend = match clean(args.backend).as_deref() {
            None if on_actions => Backend::GitHub,
            None if on_gitlab => Backend::Git,
            None => Backend::Local,
            Some("local") => Backend::Local,
            Some("github") => Backend::GitHub,
            Some("git") => Backend::Git,
            Some(other) => {
                return Err(Error::input(format!(
                    "input `backend` is `{other}`; use `github`, `git` or `local`"
                )));
            }
        };
        let forge = match clean(args.forge).as_deref().map(str::trim) {
            None if on_gitlab => Forge::GitLab,
            None | Some("none") => Forge::None,
            Some("gitlab") => Forge::GitLab,
            Some(other) => {
                return Err(Error::input(format!(
                    "input `forge` is `{other}`; use `gitlab` or `none` (the `git` backend's pull requests)"
                )));
            }
        };
        let remote = clean(args.remote).map_or_else(|| "origin".to_string(), |r| r.trim().to_string());
        if remote.starts_with('-') || remote.chars().any(char::is_control) {
            return Err(Error::input(format!(
                "input `remote` is `{remote}`; give a remote name (`origin`) or a URL"
            )));
        }
        let path = clean(args.path)
            .map(PathBuf::from)
            .or_else(|| env.get("GITHUB_WORKSPACE").filter(|s| !s.is_empty()).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("."));
        let rollback_via = match clean(args.rollback_via).as_deref() {
            None | Some("commit") => RollbackVia::Commit,
            Some("pull-request") => RollbackVia::PullRequest,
            Some(other) => {
                return Err(Error::input(format!(
                    "input `rollback-via` is `{other}`; use `commit` or `pull-request`"
                )));
            }
        };
        let timeout = match clean(args.timeout) {
            Some(t) => parse_duration("timeout", &t)?,
            None => Duration::from_secs(300),
        };
        let token = match clean(args.token) {
            Some(t) => secret("token", Some(t))?,
            None => secret("GITHUB_TOKEN", env.get("GITHUB_TOKEN").cloned())?,
        };
        let inputs = Inputs {
            command,
            service: ev(args.service, "service"),
            version: ev(args.version, "version"),
            from: ev(args.from, "from"),
            to: ev(args.to, "to"),
            environment: ev(args.environment, "environment"),
            revision: ev(args.revision, "revision"),
            path,
            config: clean(args.config),
            token,
            repository: clean(args.repository)
                .or_else(|| env.get("GITHUB_REPOSITORY").cloned().filter(|s| !s.is_empty())),
            branch: clean(args.branch),
            backend,
            dry_run: parse_bool("dry-run", clean(args.dry_run).or_else(|| event.input("dry-run")))?,
            auto_merge: parse_bool("auto-merge", clean(args.auto_merge))?,
            labels: clean(args.labels)
                .map(|l| {
                    l.split([',', '\n'])
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            rollback_via,
            allow_unmerged: parse_bool("allow-unmerged", clean(args.allow_unmerged))?,
            wait: parse_bool("wait", clean(args.wait))?,
            timeout,
            argocd_server: clean(args.argocd_server).map(|s| s.trim_end_matches('/').to_string()),
            // GitLab CI variable names cannot hold a hyphen: `INPUT_ARGOCD_TOKEN` too.
            argocd_token: secret(
                "argocd-token",
                clean(args.argocd_token).or_else(|| clean(env.get("INPUT_ARGOCD_TOKEN").cloned())),
            )?,
            argocd_app: clean(args.argocd_app),
            status_context: clean(args.status_context),
            rollback_on_failure: parse_bool("rollback-on-failure", clean(args.rollback_on_failure))?,
            deployments: parse_bool("deployments", clean(args.deployments))?,
            label: clean(args.label).map_or_else(|| "preview".to_string(), |l| l.trim().to_string()),
            url: clean(args.url),
            remote,
            forge,
            sync: parse_bool("sync", clean(args.sync))?,
            reason: ev(args.reason, "reason").map(|r| r.trim().to_string()),
        };
        if let Some(r) = &inputs.reason {
            crate::holds::check_reason(r)?;
        }
        if let Some(v) = &inputs.version {
            crate::names::check_version(v)?;
        }
        // preview's `environment` is a template, checked once expanded.
        let environment = (inputs.command != "preview").then_some(&inputs.environment);
        for (kind, v) in [
            ("service", &inputs.service),
            ("from", &inputs.from),
            ("to", &inputs.to),
            ("environment", environment.unwrap_or(&None)),
        ] {
            if let Some(v) = v {
                crate::names::check_ref_component(kind, v)?;
            }
        }
        if let Some(r) = &inputs.repository {
            let ok = r
                .split_once('/')
                .is_some_and(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'));
            if !ok {
                return Err(Error::input(format!(
                    "input `repository` is `{r}`; write it as owner/name"
                )));
            }
        }
        if let Some(b) = &inputs.branch {
            crate::names::check_ref_name("branch", b)?;
        }
        Ok(inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn empty_means_not_given_and_event_fills_in() {
        let args = Args {
            command: Some("stage".into()),
            service: Some(String::new()),
            ..Args::default()
        };
        let event = Event {
            name: "repository_dispatch".into(),
            payload: serde_json::json!({"client_payload": {"service": "payments", "version": "1.2.3"}}),
            ..Event::default()
        };
        let i = Inputs::resolve(args, &env(&[]), &event).unwrap();
        assert_eq!(i.service.as_deref(), Some("payments"));
        assert_eq!(i.version.as_deref(), Some("1.2.3"));
        assert_eq!(i.backend, Backend::Local);
    }

    #[test]
    fn inputs_come_from_the_given_environment_and_flags_win() {
        let argv = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        let vars = env(&[
            ("INPUT_COMMAND", "status"),
            ("INPUT_SERVICE", "from-env"),
            ("INPUT_DRY-RUN", "true"),
            ("INPUT_LABELS", ""),
        ]);
        let a = Args::parse_with_env(argv(&["gitops-flow", "--service", "from-flag"]), &vars).unwrap();
        assert_eq!(a.command.as_deref(), Some("status"));
        assert_eq!(a.service.as_deref(), Some("from-flag"));
        assert_eq!(a.dry_run.as_deref(), Some("true"));
        assert_eq!(a.labels.as_deref(), Some(""), "empty as given; `resolve` decides");
        let a = Args::parse_with_env(argv(&["gitops-flow", "promote"]), &vars).unwrap();
        assert_eq!(
            a.command.as_deref(),
            Some("promote"),
            "the positional on the command line wins"
        );
        assert_eq!(a.service.as_deref(), Some("from-env"));
        // Nothing but the map: no INPUT_* of the process can leak in.
        let a = Args::parse_with_env(argv(&["gitops-flow"]), &env(&[])).unwrap();
        assert_eq!(a.command, None);
        assert_eq!(a.service, None);
        let e = Args::parse_with_env(argv(&["gitops-flow"]), &env(&[("INPUT_COMMAND", "nope")])).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::InvalidValue);
    }

    #[test]
    fn tokens_are_trimmed_and_control_characters_refused() {
        let t = secret("token", Some("ghs_abc\n".into())).unwrap().unwrap();
        assert_eq!(t.expose(), "ghs_abc");
        let t = secret("token", Some("  ghs_abc \r\n".into())).unwrap().unwrap();
        assert_eq!(t.expose(), "ghs_abc");
        assert!(secret("token", Some(" \n".into())).unwrap().is_none());
        for bad in ["ghs_a\nbc", "ghs_\u{1}abc", "ghs_a\tbc", "ghs_abc\u{7f}x"] {
            let e = secret("token", Some(bad.into())).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            let msg = e.to_string();
            assert!(
                msg.starts_with("input `token` contains a control character (at character "),
                "{msg}"
            );
            assert!(!msg.contains("ghs_"), "the token leaked: {msg}");
        }
    }

    #[test]
    fn payload_numbers_keep_their_text() {
        let text =
            r#"{"client_payload": {"version": 1.10, "service": "payments", "n": 2}, "inputs": {"version": 3.20}}"#;
        let event = Event {
            name: "repository_dispatch".into(),
            payload: serde_json::from_str(text).unwrap(),
            number_text: number_texts(text),
        };
        assert_eq!(event.input("version").as_deref(), Some("1.10"));
        assert_eq!(event.input("n").as_deref(), Some("2"));
        assert_eq!(event.input("service").as_deref(), Some("payments"));
        let event = Event {
            name: "workflow_dispatch".into(),
            ..event
        };
        assert_eq!(event.input("version").as_deref(), Some("3.20"));
    }

    #[test]
    fn durations_and_bools() {
        assert_eq!(parse_duration("t", "300").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("t", "90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("t", "5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("t", "soon").is_err());
        assert_eq!(parse_duration("t", "24h").unwrap(), Duration::from_secs(86400));
        // Huge numbers are refused as input errors, never an overflow.
        for huge in [
            "86401",
            "18446744073709551615",
            "18446744073709551615h",
            "99999999999999999999999m",
        ] {
            let e = parse_duration("timeout", huge).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert_eq!(
                e.to_string(),
                format!("input `timeout` is `{huge}`, longer than 24 hours; give at most `24h` (`86400`)")
            );
        }
        assert!(parse_bool("x", Some("maybe".into())).is_err());
    }

    #[test]
    fn bad_values_are_input_errors() {
        let args = Args {
            command: Some("stage".into()),
            version: Some("1.0\nx".into()),
            ..Args::default()
        };
        assert_eq!(
            Inputs::resolve(args, &env(&[]), &Event::default())
                .unwrap_err()
                .exit_code(),
            2
        );
        let args = Args {
            command: Some("promote".into()),
            service: Some("../x".into()),
            ..Args::default()
        };
        assert_eq!(
            Inputs::resolve(args, &env(&[]), &Event::default())
                .unwrap_err()
                .exit_code(),
            2
        );
    }
}
