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

/// Stands for the service name in an expanded template: no name contains it.
const HOLE: char = '\0';

/// The tag and rollback tag of `env` with the service name left open: the literal
/// pieces between which the service name goes (one piece: no `{service}`).
fn open_names(env: &Environment) -> Result<(Vec<String>, Vec<String>)> {
    let hole = HOLE.to_string();
    let tag = expand(&env.tag, &hole, &env.name, None)?;
    let rollback = expand(&env.rollback_tag, &hole, &env.name, Some(&tag))?;
    let split = |s: &str| s.split(HOLE).map(String::from).collect::<Vec<_>>();
    Ok((split(&tag), split(&rollback)))
}

/// Two valid service names that the open names `p1` and `p2` expand to the same
/// name, if there are any; `None` also when either uses the service name more than
/// once (not decided here).
///
/// With `p1 = A1 S B1`, `p2 = A2 S B2`: a common name starts with both `A`s and ends
/// with both `B`s, so one `A` is a prefix of the other (`A2 = A1 x`) and one `B` a
/// suffix of the other. If `B1 = y B2`, the names are `s1 = x t`, `s2 = t y` for any
/// `t`; if `B2 = y B1`, `s1 = x t y`, `s2 = t`. A name without `{service}` is a
/// constant that the other must match around a valid service name.
fn colliding_services(p1: &[String], p2: &[String]) -> Option<(String, String)> {
    let valid = |s: &str| names::check_ref_component("service", s).is_ok();
    let found = |s1: String, s2: String| {
        (valid(&s1) && valid(&s2) && p1.join(s1.as_str()) == p2.join(s2.as_str()) && (p1 != p2 || s1 != s2))
            .then_some((s1, s2))
    };
    match (p1, p2) {
        ([c], [a, b]) | ([a, b], [c]) => {
            let s = c.strip_prefix(a.as_str())?.strip_suffix(b.as_str())?.to_string();
            if p1.len() == 1 {
                found("any".into(), s)
            } else {
                found(s, "any".into())
            }
        }
        ([a1, b1], [a2, b2]) => {
            let swapped = a1.len() > a2.len();
            let (a1, b1, a2, b2) = if swapped { (a2, b2, a1, b1) } else { (a1, b1, a2, b2) };
            let x = a2.strip_prefix(a1.as_str())?;
            let mut pairs: Vec<(String, String)> = Vec::new();
            if let Some(y) = b1.strip_suffix(b2.as_str()) {
                // s1 y = x s2: s1 = x t and s2 = t y, or (s1 shorter than x) x = s1 z
                // and y = z s2.
                pairs.extend(["a", "0", "_"].iter().map(|t| (format!("{x}{t}"), format!("{t}{y}"))));
                pairs.extend(
                    (1..x.len())
                        .filter(|k| x.is_char_boundary(*k))
                        .filter_map(|k| Some((x[..k].to_string(), y.strip_prefix(&x[k..])?.to_string()))),
                );
            } else if let Some(y) = b2.strip_suffix(b1.as_str()) {
                pairs.extend(["a", "0", "_"].iter().map(|t| (format!("{x}{t}{y}"), t.to_string())));
            }
            pairs
                .into_iter()
                .find_map(|(s1, s2)| if swapped { found(s2, s1) } else { found(s1, s2) })
        }
        _ => None,
    }
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
        if !self.services_listed {
            self.check_open_collisions(&env_place)?;
        }
        Ok(())
    }

    /// With no services listed, any valid service name may come in: refuses two
    /// (environment, tag or rollback tag) templates that some two service names
    /// expand to the same name (`a` in `prod-eu` and `a-prod` in `eu` under
    /// `{service}-{env}`). Exact for templates that use the service name at most once;
    /// a template that repeats it is checked when a name is made (see [`Config::tag`]).
    fn check_open_collisions(&self, env_place: &dyn Fn(usize) -> Place) -> Result<()> {
        let source = &self.source;
        let mut patterns: Vec<(usize, &str, Vec<String>)> = Vec::new();
        for (i, env) in self.environments.iter().enumerate() {
            if env.track != Track::Tag {
                continue;
            }
            let (tag, rollback) = open_names(env)?;
            patterns.push((i, "tag", tag));
            patterns.push((i, "rollback tag", rollback));
        }
        for (n, (j, k2, p2)) in patterns.iter().enumerate() {
            for (i, k1, p1) in &patterns[..n] {
                let Some((s1, s2)) = colliding_services(p1, p2) else {
                    continue;
                };
                let (e1, e2) = (&self.environments[*i].name, &self.environments[*j].name);
                let name = p1.join(s1.as_str());
                let which = if e1 == e2 {
                    format!("environment `{e1}`")
                } else {
                    format!("environments `{e1}` and `{e2}`")
                };
                return Err(Error::input_at(
                    format!(
                        "{source}: {which} can give two services the same name: the {k1} of service `{s1}` in `{e1}` and the {k2} of service `{s2}` in `{e2}` are both `{name}`, so one would move the other's deployment; put a character that no service or environment name contains between them in the `tag` template (for example `{{service}}/{{env}}`), rename one environment, or list the services under `services:`"
                    ),
                    env_place(*j),
                ));
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
        self.check_owner(&t, service, env, "tag")?;
        Ok(t)
    }

    pub fn rollback_tag(&self, env: &Environment, service: &str) -> Result<String> {
        let tag = self.tag(env, service)?;
        let t = expand(&env.rollback_tag, service, &env.name, Some(&tag))?;
        names::check_ref_name("rollback tag", &t)?;
        self.check_owner(&t, service, env, "rollback tag")?;
        Ok(t)
    }

    /// The load-time check does not decide templates that repeat `{service}`: with
    /// such a template and no services listed, refuses (before anything is written)
    /// a name that is also the tag or rollback tag of another (service, environment).
    fn check_owner(&self, name: &str, service: &str, env: &Environment, kind: &str) -> Result<()> {
        if self.services_listed {
            return Ok(());
        }
        let mut open = Vec::new();
        for e in self.environments.iter().filter(|e| e.track == Track::Tag) {
            let (tag, rollback) = open_names(e)?;
            open.push((e, "tag", tag));
            open.push((e, "rollback tag", rollback));
        }
        if open.iter().all(|(_, _, p)| p.len() <= 2) {
            return Ok(());
        }
        for (e, k, p) in &open {
            let holes = p.len() - 1;
            let literal: usize = p.iter().map(String::len).sum();
            if holes == 0 || name.len() < literal || !(name.len() - literal).is_multiple_of(holes) {
                continue;
            }
            let (start, len) = (p[0].len(), (name.len() - literal) / holes);
            let Some(other) = name.get(start..start + len) else {
                continue;
            };
            if p.join(other) != name
                || names::check_ref_component("service", other).is_err()
                || (other == service && e.name == env.name && *k == kind)
            {
                continue;
            }
            return Err(Error::input(format!(
                "{}: the {kind} of service `{service}` in `{}` is `{name}`, which is also the {k} of service `{other}` in `{}`: one would move the other's deployment; change the `tag` template (for example `{{service}}/{{env}}`) or list the services under `services:`",
                self.source, env.name, e.name
            )));
        }
        Ok(())
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
    fn environments_whose_tags_some_two_services_share_are_refused_without_services() {
        // Issue 9 §6: `a` in `prod-eu` and `a-prod` in `eu` are both `a-prod-eu`.
        let e = Config::parse("environments:\n  - name: eu\n  - name: prod-eu\n", "c").unwrap_err();
        assert_eq!(
            e.to_string(),
            "c: environments `eu` and `prod-eu` can give two services the same name: the tag of service `a-prod` in `eu` and the tag of service `a` in `prod-eu` are both `a-prod-eu`, so one would move the other's deployment; put a character that no service or environment name contains between them in the `tag` template (for example `{service}/{env}`), rename one environment, or list the services under `services:`"
        );
        assert_eq!(e.exit_code(), 2);
        assert_eq!(e.place().unwrap().line, Some(3));
        // A tag that is another environment's rollback tag for some service.
        let e = Config::parse("environments:\n  - name: eu\n  - name: rollback\n", "c").unwrap_err();
        assert!(
            e.to_string().contains(
                "the rollback tag of service `a` in `eu` and the tag of service `a-eu` in `rollback` are both `a-eu-rollback`"
            ),
            "{e}"
        );
        // The environment before the service.
        let e = Config::parse(
            "environments:\n  - { name: eu, tag: '{env}-{service}', rollback-tag: 'rollback/{tag}' }\n  - { name: eu-prod, tag: '{env}-{service}', rollback-tag: 'rollback/{tag}' }\n",
            "c",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains(
                "the tag of service `prod-a` in `eu` and the tag of service `a` in `eu-prod` are both `eu-prod-a`"
            ),
            "{e}"
        );
        // The service first in the tag, so its rollback tag (`{tag}-rollback`) is
        // the tag of another service in the same environment.
        let e = Config::parse("environments:\n  - { name: eu, tag: 'eu/{service}' }\n", "c").unwrap_err();
        assert!(
            e.to_string().starts_with(
                "c: environment `eu` can give two services the same name: the tag of service `a-rollback` in `eu` and the rollback tag of service `a` in `eu` are both `eu/a-rollback`"
            ),
            "{e}"
        );
        // A fixed tag that another environment's template reaches.
        let e = Config::parse(
            "environments:\n  - { name: a, tag: 'x-a' }\n  - { name: b, tag: '{service}-a' }\n",
            "c",
        )
        .unwrap_err();
        assert!(e.to_string().contains("service `x` in `b`"), "{e}");
        // Rollback tags of their own template.
        let e = Config::parse(
            "environments:\n  - { name: eu, rollback-tag: 'old/{service}' }\n  - { name: prod, rollback-tag: 'old/{service}-x' }\n",
            "c",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("the rollback tag of service `a-x` in `eu` and the rollback tag of service `a` in `prod`"),
            "{e}"
        );
    }

    #[test]
    fn environments_no_two_services_can_confuse_are_accepted_without_services() {
        for envs in [
            "[{name: staging}, {name: production}]",
            "[{name: dev}, {name: qa}, {name: staging}, {name: prod-eu}, {name: prod-us}]",
            "[{name: eu, tag: '{service}/{env}'}, {name: prod-eu, tag: '{service}/{env}'}]",
            "[{name: eu, tag: 'eu/{service}', rollback-tag: 'rollback/{tag}'}, {name: prod-eu, tag: 'prod-eu/{service}', rollback-tag: 'rollback/{tag}'}]",
            "[{name: a, tag: 'x-a'}, {name: b, tag: 'x-b'}]",
            "[{name: eu, rollback-tag: 'rollback/{tag}'}, {name: prod-us}]",
        ] {
            Config::parse(&format!("environments: {envs}\n"), "c").unwrap_or_else(|e| panic!("{envs}: {e}"));
        }
    }

    #[test]
    fn a_template_that_repeats_the_service_is_checked_when_the_name_is_made() {
        // Not decided at load: `a` in `eu` and `a` in `a-eu` are both `a-a-eu`.
        let c = Config::parse(
            "environments:\n  - { name: eu, tag: '{service}-{service}-{env}' }\n  - name: a-eu\n",
            "c",
        )
        .unwrap();
        let e = c.tag(c.env("eu").unwrap(), "a").unwrap_err();
        assert_eq!(
            e.to_string(),
            "c: the tag of service `a` in `eu` is `a-a-eu`, which is also the tag of service `a` in `a-eu`: one would move the other's deployment; change the `tag` template (for example `{service}/{env}`) or list the services under `services:`"
        );
        assert_eq!(e.exit_code(), 2);
        assert!(c.rollback_tag(c.env("a-eu").unwrap(), "a").is_err());
        assert_eq!(c.tag(c.env("eu").unwrap(), "b").unwrap(), "b-b-eu");
        assert_eq!(c.rollback_tag(c.env("a-eu").unwrap(), "b").unwrap(), "b-a-eu-rollback");
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
