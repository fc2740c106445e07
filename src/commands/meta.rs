//! The pull-request metadata protocol: what gitops-flow writes into a pull request's
//! body, and how a later run (the chain after a merge) reads what a push changed.

use serde::{Deserialize, Serialize};

use super::{Ctx, short};
use crate::error::Result;
use crate::repo::Oid;

/// Machine-readable metadata carried in pull-request bodies.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Meta {
    pub command: String,
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

const META_OPEN: &str = "<!-- gitops-flow ";

impl Meta {
    pub fn render(&self) -> String {
        format!("{META_OPEN}{} -->", serde_json::to_string(self).unwrap_or_default())
    }

    pub fn parse(body: &str) -> Option<Meta> {
        let start = body.find(META_OPEN)? + META_OPEN.len();
        let end = body[start..].find(" -->")? + start;
        serde_json::from_str(&body[start..end]).ok()
    }
}

impl Ctx<'_> {
    /// What a push changed, read from the version fields rather than a forge API:
    /// every (service, environment, version) whose file-tracked version differs
    /// between the push's before and after commits. A merge commit, a squash merge
    /// and a fast-forward all look the same this way.
    pub fn pushed_changes(&self, sha: &str) -> Result<Vec<Meta>> {
        let Some(after) = self.repo.resolve_revision(sha)? else {
            return Ok(Vec::new());
        };
        let before = self.pushed_before(&after)?;
        let mut out = Vec::new();
        for service in self.config.services.keys() {
            for env in self
                .config
                .environments
                .iter()
                .filter(|e| super::tracks::of(e).deployed_by_push())
            {
                let Ok(locs) = self.config.locations(env, service) else {
                    continue;
                };
                let Ok(new) = self.read_version(&after, &locs) else {
                    continue;
                };
                let old = match &before {
                    Some(b) => self.read_version(b, &locs).ok(),
                    None => None,
                };
                if old.as_deref() != Some(new.as_str()) {
                    out.push(Meta {
                        command: "push".into(),
                        service: service.clone(),
                        environment: Some(env.name.clone()),
                        from: None,
                        version: Some(new),
                    });
                }
            }
        }
        Ok(out)
    }

    /// The one change a push made that the chain acts on: the merged pull
    /// request's metadata, else the version field the push changed (restricted to
    /// environment `only` when given). `Err` names the changes when there are several.
    pub fn pushed_change(&self, sha: &Oid, only: Option<&str>) -> Result<std::result::Result<Option<Meta>, String>> {
        if let Some(m) = self.merged_meta(sha)? {
            return Ok(Ok(Some(m)));
        }
        let mut changes = self.pushed_changes(sha)?;
        changes.retain(|m| only.is_none_or(|o| m.environment.as_deref() == Some(o)));
        if changes.len() > 1 {
            return Ok(Err(format!(
                "commit {} changed several versions ({}); pass `service` (and `from` or `environment`) to say which to act on",
                short(sha),
                changes
                    .iter()
                    .map(|m| format!(
                        "{} in `{}` to {}",
                        m.service,
                        m.environment.as_deref().unwrap_or_default(),
                        m.version.as_deref().unwrap_or_default()
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(Ok(changes.pop()))
    }

    /// The metadata of the gitops-flow pull request whose merge produced `sha`.
    pub fn merged_meta(&self, sha: &Oid) -> Result<Option<Meta>> {
        // No forge API: the promotion chain reads what the push changed instead.
        let Some(api) = self.forge.api() else {
            return Ok(None);
        };
        Ok(api.merged_pull_request(sha)?.and_then(|pr| Meta::parse(&pr.body)))
    }
}
