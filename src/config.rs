//! `gitops-flow.yaml`: the model, its defaults (the classic tag flow) and validation.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::error::{Error, Place, Result};
pub use crate::manifest::{DocSelector, Location, LocationKind, ValueForm};
use crate::names;

/// How an environment knows what to deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Track {
    Tag,
    File,
    Branch,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    branch: Option<String>,
    /// Default of every environment's `hold-on-rollback`.
    hold_on_rollback: Option<bool>,
    environments: Option<Vec<Spanned<RawEnvironment>>>,
    services: Option<BTreeMap<String, Spanned<RawService>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawEnvironment {
    name: String,
    track: Option<Track>,
    tag: Option<String>,
    rollback_tag: Option<String>,
    branch: Option<String>,
    #[serde(default)]
    direct: bool,
    #[serde(default)]
    auto_merge: bool,
    argocd_app: Option<String>,
    url: Option<String>,
    /// `rollback-on-failure` holds the environment when it rolls back (default true).
    hold_on_rollback: Option<bool>,
    /// Ask Argo CD to sync the application after a move (manual-sync applications).
    #[serde(default)]
    argocd_sync: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawService {
    chart: Option<String>,
    version: Option<Vec<Spanned<RawLocation>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLocation {
    file: String,
    key: Option<String>,
    imagepolicy: Option<String>,
    kustomize_image: Option<String>,
    /// With `key`: what the value is (`version` or `image`).
    value: Option<RawValueForm>,
    /// In a file of several documents: which one (`{kind, name}`; `name` is a template).
    document: Option<RawDocument>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RawValueForm {
    Version,
    Image,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocument {
    kind: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub name: String,
    pub track: Track,
    /// Template of the tag (`{service}`, `{env}`).
    pub tag: String,
    /// Template of the rollback tag (`{service}`, `{env}`, `{tag}`).
    pub rollback_tag: String,
    /// Branch-tracked: the environment's branch.
    pub branch: Option<String>,
    pub direct: bool,
    pub auto_merge: bool,
    pub argocd_app: Option<String>,
    pub url: Option<String>,
    /// `rollback-on-failure` also locks the environment for the service it rolled back.
    pub hold_on_rollback: bool,
    /// After a move, ask Argo CD to sync the application before the gate.
    pub argocd_sync: bool,
}

/// Where one copy of a service's version lives in a file-tracked environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationTemplate {
    pub file: String,
    pub kind: LocationKind,
    pub document: Option<DocSelector>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Service {
    pub chart: Option<String>,
    pub version: Vec<LocationTemplate>,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, for messages (`<defaults>` when absent).
    pub source: String,
    pub branch: Option<String>,
    pub environments: Vec<Environment>,
    pub services: BTreeMap<String, Service>,
    /// False when the file lists no services: any valid service name is accepted.
    pub services_listed: bool,
}

fn place(source: &str, loc: serde_saphyr::Location) -> Place {
    Place {
        file: source.to_string(),
        line: Some(loc.line()),
        column: Some(loc.column()),
    }
}

impl Default for Config {
    fn default() -> Self {
        let env = |name: &str| Environment {
            name: name.into(),
            track: Track::Tag,
            tag: "{service}-{env}".into(),
            rollback_tag: "{tag}-rollback".into(),
            branch: None,
            direct: false,
            auto_merge: false,
            argocd_app: None,
            url: None,
            hold_on_rollback: true,
            argocd_sync: false,
        };
        Config {
            source: "<defaults>".into(),
            branch: None,
            environments: vec![env("staging"), env("production")],
            services: BTreeMap::new(),
            services_listed: false,
        }
    }
}

/// Expands `{service}`, `{env}` and `{tag}` in a template; any other `{...}` is an error.
pub fn expand(template: &str, service: &str, env: &str, tag: Option<&str>) -> Result<String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            return Err(Error::input(format!("template `{template}` has an unclosed `{{`")));
        };
        match (&after[..end], tag) {
            ("service", _) => out.push_str(service),
            ("env", _) => out.push_str(env),
            ("tag", Some(t)) => out.push_str(t),
            (other, _) => {
                return Err(Error::input(format!(
                    "template `{template}` uses `{{{other}}}`; only {{service}}, {{env}} (and {{tag}} in rollback-tag) are known"
                )));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Config {
    /// Parses and validates a config file's text. `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Config> {
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| {
            let place = e.location().map(|l| place(source, l)).unwrap_or(Place {
                file: source.into(),
                ..Place::default()
            });
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or("invalid YAML").to_string();
            Error::input_at(
                format!(
                    "{source} is not a valid gitops-flow config: {first}; see the configuration section of the README"
                ),
                place,
            )
        })?;
        let mut config = Config {
            source: source.to_string(),
            ..Config::default()
        };
        // Where each environment and service is written, for collision errors.
        let mut env_places: Vec<Place> = Vec::new();
        let mut service_places: BTreeMap<String, Place> = BTreeMap::new();
        if let Some(branch) = raw.branch {
            names::check_ref_name("branch", &branch)?;
            config.branch = Some(branch);
        }
        let hold_on_rollback = raw.hold_on_rollback;
        if raw.environments.is_none() {
            for e in &mut config.environments {
                e.hold_on_rollback = hold_on_rollback.unwrap_or(true);
            }
        }
        if let Some(envs) = raw.environments {
            if envs.is_empty() {
                return Err(Error::input_at(
                    format!("{source}: `environments` is empty; list at least one environment"),
                    Place {
                        file: source.into(),
                        ..Place::default()
                    },
                ));
            }
            let mut out: Vec<Environment> = Vec::new();
            for spanned in envs {
                let at = place(source, spanned.referenced);
                let e = spanned.value;
                names::check_ref_component("environment", &e.name)
                    .map_err(|err| Error::input_at(format!("{source}: {err}"), at.clone()))?;
                if out.iter().any(|o| o.name == e.name) {
                    return Err(Error::input_at(
                        format!(
                            "{source}: environment `{}` is listed twice; names must be unique",
                            e.name
                        ),
                        at,
                    ));
                }
                let track = e.track.unwrap_or(Track::Tag);
                if track == Track::Branch && e.branch.is_none() {
                    return Err(Error::input_at(
                        format!(
                            "{source}: environment `{}` has `track: branch` but no `branch:`; name the branch it deploys",
                            e.name
                        ),
                        at,
                    ));
                }
                let env = Environment {
                    tag: e.tag.unwrap_or_else(|| "{service}-{env}".into()),
                    rollback_tag: e.rollback_tag.unwrap_or_else(|| "{tag}-rollback".into()),
                    name: e.name,
                    track,
                    branch: e.branch,
                    direct: e.direct,
                    auto_merge: e.auto_merge,
                    argocd_app: e.argocd_app,
                    url: e.url,
                    hold_on_rollback: e.hold_on_rollback.or(hold_on_rollback).unwrap_or(true),
                    argocd_sync: e.argocd_sync,
                };
                // Templates must expand to valid refs for a valid service name.
                let probe = |t: &str, tag: Option<&str>| -> Result<String> {
                    let s = expand(t, "svc", &env.name, tag)?;
                    names::check_ref_name("tag template", &s)?;
                    Ok(s)
                };
                let tag =
                    probe(&env.tag, None).map_err(|err| Error::input_at(format!("{source}: {err}"), at.clone()))?;
                probe(&env.rollback_tag, Some(&tag))
                    .map_err(|err| Error::input_at(format!("{source}: {err}"), at.clone()))?;
                if let Some(b) = &env.branch {
                    names::check_ref_name("branch", b)
                        .map_err(|err| Error::input_at(format!("{source}: {err}"), at.clone()))?;
                }
                env_places.push(at);
                out.push(env);
            }
            config.environments = out;
        }
        if let Some(services) = raw.services {
            config.services_listed = true;
            for (name, spanned) in services {
                let at = place(source, spanned.referenced);
                names::check_ref_component("service", &name)
                    .map_err(|err| Error::input_at(format!("{source}: {err}"), at.clone()))?;
                service_places.insert(name.clone(), at.clone());
                let raw = spanned.value;
                let mut service = Service {
                    chart: raw.chart,
                    version: Vec::new(),
                };
                if let Some(chart) = &service.chart {
                    let c = expand(chart, &name, "env", None)?;
                    names::check_repo_path("chart", &c)
                        .map_err(|err| Error::input_at(format!("{source}: {err}"), at.clone()))?;
                }
                for loc in raw.version.unwrap_or_default() {
                    let lat = place(source, loc.referenced);
                    let l = loc.value;
                    let kinds = [l.key.is_some(), l.imagepolicy.is_some(), l.kustomize_image.is_some()]
                        .iter()
                        .filter(|b| **b)
                        .count();
                    if l.value.is_some() && l.key.is_none() {
                        return Err(Error::input_at(
                            format!(
                                "{source}: `value:` on a version location of `{name}` goes with `key:`; remove it or add `key:`"
                            ),
                            lat,
                        ));
                    }
                    let form = match l.value {
                        None => ValueForm::Auto,
                        Some(RawValueForm::Version) => ValueForm::Version,
                        Some(RawValueForm::Image) => ValueForm::Image,
                    };
                    let document = match l.document {
                        Some(RawDocument { kind: None, name: None }) => {
                            return Err(Error::input_at(
                                format!(
                                    "{source}: `document:` on a version location of `{name}` names neither `kind` nor `name`; give at least one"
                                ),
                                lat,
                            ));
                        }
                        Some(d) => Some(DocSelector {
                            kind: d.kind,
                            name: d.name,
                        }),
                        None => None,
                    };
                    let kind = match (l.key, l.imagepolicy, l.kustomize_image) {
                        _ if kinds > 1 => {
                            return Err(Error::input_at(
                                format!(
                                    "{source}: a version location of `{name}` gives more than one of `key`, `imagepolicy`, `kustomize-image`; give exactly one"
                                ),
                                lat,
                            ));
                        }
                        (Some(k), _, _) if k == "appVersion" && form == ValueForm::Auto => {
                            LocationKind::ChartAppVersion
                        }
                        (Some(k), _, _) => {
                            crate::manifest::KeyPath::parse(&k)
                                .map_err(|err| Error::input_at(format!("{source}: {err}"), lat.clone()))?;
                            LocationKind::Key { path: k, form }
                        }
                        (_, Some(p), _) => LocationKind::ImagePolicy(p),
                        (_, _, Some(i)) => LocationKind::KustomizeImage(i),
                        (None, None, None) if l.file.ends_with("Chart.yaml") => LocationKind::ChartAppVersion,
                        (None, None, None) => {
                            return Err(Error::input_at(
                                format!(
                                    "{source}: the version location `{}` of `{name}` says neither `key`, `imagepolicy` nor `kustomize-image`; add one",
                                    l.file
                                ),
                                lat,
                            ));
                        }
                    };
                    for env in &config.environments {
                        let f = expand(&l.file, &name, &env.name, None)
                            .map_err(|err| Error::input_at(format!("{source}: {err}"), lat.clone()))?;
                        names::check_repo_path("file", &f)
                            .map_err(|err| Error::input_at(format!("{source}: {err}"), lat.clone()))?;
                    }
                    if let Some(DocSelector { name: Some(n), .. }) = &document {
                        expand(n, &name, "env", None)
                            .map_err(|err| Error::input_at(format!("{source}: {err}"), lat.clone()))?;
                    }
                    service.version.push(LocationTemplate {
                        file: l.file,
                        kind,
                        document,
                    });
                }
                config.services.insert(name, service);
            }
        }
        for env in &config.environments {
            if env.track == Track::File
                && let Some((name, _)) = config
                    .services
                    .iter()
                    .find(|(_, s)| s.version.is_empty() && s.chart.is_none())
            {
                return Err(Error::input_at(
                    format!(
                        "{source}: environment `{}` is file-tracked but service `{name}` has no `version:` locations; list where its version lives",
                        env.name
                    ),
                    Place {
                        file: source.into(),
                        ..Place::default()
                    },
                ));
            }
        }
        config.check_collisions(&env_places, &service_places)?;
        Ok(config)
    }

    /// Refuses what would make two things one: two (service, environment) pairs
    /// whose tags (or rollback tags) expand to the same name, a rollback tag equal
    /// to its tag, two branch-tracked environments on one branch. Decided on the
    /// expanded names, never on template text: the listed services, or (when none
    /// are listed) any one service name.
    fn check_collisions(&self, env_places: &[Place], service_places: &BTreeMap<String, Place>) -> Result<()> {
        let source = &self.source;
        let env_place = |i: usize| {
            env_places.get(i).cloned().unwrap_or_else(|| Place {
                file: source.clone(),
                ..Place::default()
            })
        };
        for (i, env) in self.environments.iter().enumerate() {
            if let Some(other) = self.environments[..i]
                .iter()
                .find(|o| o.track == Track::Branch && env.track == Track::Branch && o.branch == env.branch)
            {
                return Err(Error::input_at(
                    format!(
                        "{source}: environments `{}` and `{}` both track branch `{}`; give each environment its own branch",
                        other.name,
                        env.name,
                        env.branch.as_deref().unwrap_or_default()
                    ),
                    env_place(i),
                ));
            }
        }
        const ANY: &str = "svc";
        let services: Vec<&str> = if self.services_listed {
            self.services.keys().map(String::as_str).collect()
        } else {
            vec![ANY]
        };
        // Expanded name -> (service, environment index, "tag" | "rollback tag").
        let mut seen: BTreeMap<String, (&str, usize, &str)> = BTreeMap::new();
        for (i, env) in self.environments.iter().enumerate() {
            if env.track != Track::Tag {
                continue;
            }
            for service in &services {
                let tag = self.tag(env, service)?;
                let rollback = self.rollback_tag(env, service)?;
                if tag == rollback {
                    return Err(Error::input_at(
                        format!(
                            "{source}: environment `{}` has a `rollback-tag` that expands to its own tag (`{tag}` for service `{service}`); give the rollback tag its own name (default `{{tag}}-rollback`)",
                            env.name
                        ),
                        env_place(i),
                    ));
                }
                for (name, kind) in [(tag, "tag"), (rollback, "rollback tag")] {
                    let Some(&(s2, j, k2)) = seen.get(&name) else {
                        seen.insert(name, (service, i, kind));
                        continue;
                    };
                    let other = &self.environments[j].name;
                    let message = if !self.services_listed {
                        format!(
                            "{source}: environments `{other}` and `{}` give every service the same {} (`{name}` for a service named `{ANY}`); give each environment its own `tag`",
                            env.name,
                            if k2 == kind {
                                kind.to_string()
                            } else {
                                format!("name for the {k2} of one and the {kind} of the other")
                            }
                        )
                    } else {
                        format!(
                            "{source}: the {k2} of service `{s2}` in `{other}` and the {kind} of service `{service}` in `{}` are both `{name}`: one would move the other's deployment; change the `tag` template (for example `{{service}}/{{env}}`) or a name",
                            env.name
                        )
                    };
                    let at = if self.services_listed && s2 != *service {
                        service_places.get(*service).cloned().unwrap_or_else(|| env_place(i))
                    } else {
                        env_place(i)
                    };
                    return Err(Error::input_at(message, at));
                }
            }
        }
        Ok(())
    }

    /// Loads `name` from the checkout at `root` if it exists, else the defaults. A
    /// symbolic link that leads out of the checkout is refused without reading it.
    pub fn load(root: &std::path::Path, name: &str, must_exist: bool) -> Result<Config> {
        let path = root.join(name);
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => return Ok(Config::default()),
            Err(e) => return Err(Error::input(format!("cannot read config {name}: {e}"))),
            Ok(_) => {}
        }
        // Resolves links (in the file name and the folders on the way) without
        // opening the file.
        let outside = || {
            Error::input(format!(
                "config {name} is a symbolic link that leads outside the checkout at {}; gitops-flow does not read it. Put the file itself in the repository (a link to a file inside the repository is fine)",
                root.display()
            ))
        };
        let target = std::fs::canonicalize(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::input(format!(
                "config {name} is a symbolic link to a file that does not exist; point it at a file in the repository"
            )),
            _ => Error::input(format!("cannot read config {name}: {e}")),
        })?;
        let root = std::fs::canonicalize(root).map_err(|e| Error::input(format!("cannot read config {name}: {e}")))?;
        if !target.starts_with(&root) {
            return Err(outside());
        }
        match std::fs::read(&target) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| Error::input(format!("{name} is not UTF-8 text")))?;
                Config::parse(&text, name)
            }
            Err(e) => Err(Error::input(format!("cannot read config {name}: {e}"))),
        }
    }

    pub fn env(&self, name: &str) -> Result<&Environment> {
        self.environments.iter().find(|e| e.name == name).ok_or_else(|| {
            Error::input(format!(
                "unknown environment `{name}`; {} defines: {}",
                self.source,
                self.env_names().join(", ")
            ))
        })
    }

    pub fn env_index(&self, name: &str) -> Result<usize> {
        let env = self.env(name)?;
        Ok(self.environments.iter().position(|e| e.name == env.name).unwrap_or(0))
    }

    pub fn env_names(&self) -> Vec<&str> {
        self.environments.iter().map(|e| e.name.as_str()).collect()
    }

    pub fn first_env(&self) -> &Environment {
        &self.environments[0]
    }

    pub fn last_env(&self) -> &Environment {
        self.environments.last().expect("config has at least one environment")
    }

    /// Validates a service name and returns its settings (defaults if unlisted).
    pub fn service(&self, name: &str) -> Result<Service> {
        names::check_ref_component("service", name)?;
        match self.services.get(name) {
            Some(s) => Ok(s.clone()),
            None if !self.services_listed => Ok(Service::default()),
            None => Err(Error::input(format!(
                "unknown service `{name}`; {} lists: {}",
                self.source,
                self.services.keys().cloned().collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    pub fn chart_dir(&self, service: &str) -> Result<String> {
        let s = self.service(service)?;
        let dir = match s.chart {
            Some(c) => expand(&c, service, "", None)?,
            None => format!("charts/{service}"),
        };
        names::check_repo_path("chart", &dir)?;
        Ok(dir.trim_end_matches('/').to_string())
    }

    pub fn tag(&self, env: &Environment, service: &str) -> Result<String> {
        let t = expand(&env.tag, service, &env.name, None)?;
        names::check_ref_name("tag", &t)?;
        Ok(t)
    }

    pub fn rollback_tag(&self, env: &Environment, service: &str) -> Result<String> {
        let tag = self.tag(env, service)?;
        let t = expand(&env.rollback_tag, service, &env.name, Some(&tag))?;
        names::check_ref_name("rollback tag", &t)?;
        Ok(t)
    }

    /// The concrete version locations of `service` in `env`.
    pub fn locations(&self, env: &Environment, service: &str) -> Result<Vec<Location>> {
        let s = self.service(service)?;
        let mut out = Vec::new();
        if s.version.is_empty() {
            let chart = self.chart_dir(service)?;
            out.push(Location::new(
                format!("{chart}/Chart.yaml"),
                LocationKind::ChartAppVersion,
            ));
        }
        for l in &s.version {
            let file = expand(&l.file, service, &env.name, None)?;
            names::check_repo_path("file", &file)?;
            let kind = match &l.kind {
                LocationKind::Key { path, form } => LocationKind::Key {
                    path: expand(path, service, &env.name, None)?,
                    form: *form,
                },
                LocationKind::ImagePolicy(p) => LocationKind::ImagePolicy(expand(p, service, &env.name, None)?),
                LocationKind::KustomizeImage(i) => LocationKind::KustomizeImage(expand(i, service, &env.name, None)?),
                LocationKind::ChartAppVersion => LocationKind::ChartAppVersion,
            };
            let document = match &l.document {
                Some(d) => Some(DocSelector {
                    kind: d.kind.clone(),
                    name: d
                        .name
                        .as_deref()
                        .map(|n| expand(n, service, &env.name, None))
                        .transpose()?,
                }),
                None => None,
            };
            out.push(Location { file, kind, document });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_tag_flow() {
        let c = Config::default();
        assert_eq!(c.env_names(), ["staging", "production"]);
        let prod = c.env("production").unwrap();
        assert_eq!(c.tag(prod, "payments").unwrap(), "payments-production");
        assert_eq!(
            c.rollback_tag(prod, "payments").unwrap(),
            "payments-production-rollback"
        );
        assert_eq!(c.chart_dir("payments").unwrap(), "charts/payments");
    }

    #[test]
    fn file_mode_config() {
        let c = Config::parse(
            "environments:\n  - { name: dev, track: file, direct: true }\n  - { name: prod, track: file }\nservices:\n  payments:\n    version:\n      - file: overlays/{env}/payments/values.yaml\n        key: image.tag\n",
            "gitops-flow.yaml",
        )
        .unwrap();
        let dev = c.env("dev").unwrap();
        assert!(dev.direct);
        let locs = c.locations(c.env("prod").unwrap(), "payments").unwrap();
        assert_eq!(locs[0].file, "overlays/prod/payments/values.yaml");
        assert!(c.service("other").is_err());
    }

    #[test]
    fn value_forms_and_document_selectors() {
        let c = Config::parse(
            "environments:\n  - { name: dev, track: file }\nservices:\n  web:\n    version:\n      - file: d/{env}.yaml\n        key: spec.containers[0].image\n        value: image\n        document: {kind: Deployment, name: '{service}-{env}'}\n",
            "gitops-flow.yaml",
        )
        .unwrap();
        let locs = c.locations(c.env("dev").unwrap(), "web").unwrap();
        assert_eq!(
            locs[0],
            Location {
                file: "d/dev.yaml".into(),
                kind: LocationKind::Key {
                    path: "spec.containers[0].image".into(),
                    form: ValueForm::Image
                },
                document: Some(DocSelector {
                    kind: Some("Deployment".into()),
                    name: Some("web-dev".into())
                }),
            }
        );
        for (bad, why) in [
            ("value: image\n        imagepolicy: 'a:b'", "goes with `key:`"),
            ("key: a\n        value: digest", "unknown variant"),
            ("key: a\n        document: {}", "neither `kind` nor `name`"),
            ("key: a\n        document: {name: '{nope}'}", "{nope}"),
        ] {
            let text = format!(
                "environments:\n  - {{ name: dev, track: file }}\nservices:\n  web:\n    version:\n      - file: d.yaml\n        {bad}\n"
            );
            let e = Config::parse(&text, "gitops-flow.yaml").unwrap_err();
            assert!(e.to_string().contains(why), "{bad}: {e}");
            assert_eq!(e.exit_code(), 2);
        }
    }

    #[test]
    fn errors_carry_line_numbers() {
        let e = Config::parse("environments:\n  - name: dev\n    trak: tag\n", "gitops-flow.yaml").unwrap_err();
        let place = e.place().expect("a place");
        assert_eq!(place.file, "gitops-flow.yaml");
        assert!(place.line.is_some(), "{e}");
        let e = Config::parse("environments:\n  - name: dev\n  - name: 'a b'\n", "gitops-flow.yaml").unwrap_err();
        assert_eq!(e.place().unwrap().line, Some(3), "{e}");
    }

    #[test]
    fn templates() {
        assert_eq!(expand("{service}-{env}", "a", "b", None).unwrap(), "a-b");
        assert!(expand("{nope}", "a", "b", None).is_err());
        assert!(Config::parse("environments:\n  - name: x\n    tag: '{service}..{env}'\n", "c").is_err());
        let e = Config::parse(
            "environments:\n  - { name: a, tag: '{service}' }\n  - { name: b, tag: '{service}' }\n",
            "c",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "c: environments `a` and `b` give every service the same tag (`svc` for a service named `svc`); give each environment its own `tag`"
        );
        assert_eq!(e.place().unwrap().line, Some(3));
    }

    #[test]
    fn the_minimal_config_and_the_spelled_out_default_are_accepted() {
        let c = Config::parse("environments: [{name: staging}, {name: production}]\n", "c").unwrap();
        assert_eq!(c.env_names(), ["staging", "production"]);
        let c = Config::parse(
            "environments:\n  - { name: staging, tag: '{service}-{env}' }\n  - { name: production, tag: '{service}-{env}' }\nservices:\n  payments: {}\n  orders: {}\n",
            "c",
        )
        .unwrap();
        assert_eq!(
            c.tag(c.env("production").unwrap(), "orders").unwrap(),
            "orders-production"
        );
        // Fixed tags are fine for one service.
        Config::parse(
            "environments:\n  - { name: a, tag: 'x-a' }\n  - { name: b, tag: 'x-b' }\nservices:\n  x: {}\n",
            "c",
        )
        .unwrap();
    }

    #[test]
    fn expanded_tags_may_not_collide() {
        let e = Config::parse(
            "environments:\n  - name: prod-eu\n  - name: eu\nservices:\n  a: {}\n  a-prod: {}\n",
            "c",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "c: the tag of service `a` in `prod-eu` and the tag of service `a-prod` in `eu` are both `a-prod-eu`: one would move the other's deployment; change the `tag` template (for example `{service}/{env}`) or a name"
        );
        assert_eq!(e.exit_code(), 2);
        assert_eq!(e.place().unwrap().line, Some(6));
        // A tag that is another pair's rollback tag.
        let e = Config::parse(
            "environments:\n  - name: x\n  - name: x-rollback\nservices:\n  a: {}\n",
            "c",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "c: the rollback tag of service `a` in `x` and the tag of service `a` in `x-rollback` are both `a-x-rollback`: one would move the other's deployment; change the `tag` template (for example `{service}/{env}`) or a name"
        );
        // File-tracked environments have no tags to collide.
        Config::parse(
            "environments:\n  - { name: a, track: file, tag: t }\n  - { name: b, track: file, tag: t }\nservices:\n  s:\n    version:\n      - file: '{env}/v.yaml'\n        key: v\n",
            "c",
        )
        .unwrap();
    }

    #[test]
    fn a_rollback_tag_equal_to_its_tag_is_refused() {
        let e = Config::parse("environments:\n  - { name: prod, rollback-tag: '{tag}' }\n", "c").unwrap_err();
        assert_eq!(
            e.to_string(),
            "c: environment `prod` has a `rollback-tag` that expands to its own tag (`svc-prod` for service `svc`); give the rollback tag its own name (default `{tag}-rollback`)"
        );
        assert_eq!(e.place().unwrap().line, Some(2));
    }

    #[test]
    fn two_branch_environments_on_one_branch_are_refused() {
        let e = Config::parse(
            "environments:\n  - { name: a, track: branch, branch: deploy }\n  - { name: b, track: branch, branch: deploy }\n",
            "c",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "c: environments `a` and `b` both track branch `deploy`; give each environment its own branch"
        );
        assert_eq!(e.place().unwrap().line, Some(3));
        Config::parse(
            "environments:\n  - { name: a, track: branch, branch: staging }\n  - { name: b, track: branch, branch: main }\n",
            "c",
        )
        .unwrap();
    }
}
