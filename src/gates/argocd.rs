//! The Argo CD gate: `GET /api/v1/applications/{app}`.

use std::time::{Duration, Instant};

use http::Method;

use super::{Probe, Verdict};
use crate::error::{Error, Result};
use crate::names::short_sha;
use crate::repo::github::{Api, RetryPolicy};
use crate::repo::{Oid, Repository};
use crate::secret::Secret;

pub struct ArgoProbe<'a> {
    api: Api,
    app: String,
    expected: Oid,
    repo: &'a dyn Repository,
    first: bool,
    /// Preview mode: the application may not exist yet, and only the expected
    /// commit itself counts (the generator sets `targetRevision` to the head).
    preview: bool,
    seen: Seen,
}

/// What the last observation was (for `preview`: `failure` or `error` on timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Seen {
    #[default]
    Nothing,
    /// 403/404: no such application (Argo CD answers 403 for an unknown one).
    Missing,
    /// Argo CD answered something else than the application.
    ApiError,
    /// The application, in whatever state.
    App,
}

impl<'a> ArgoProbe<'a> {
    pub fn new(server: &str, token: &Secret, app: &str, expected: Oid, repo: &'a dyn Repository) -> Result<Self> {
        crate::names::check_ref_component("argocd-app", app)?;
        let api = Api::new(server, server, token, RetryPolicy::default())?;
        Ok(ArgoProbe {
            api,
            app: app.to_string(),
            expected,
            repo,
            first: true,
            preview: false,
            seen: Seen::Nothing,
        })
    }

    /// The preview gate: an application that is not there (yet) is waited for, and
    /// the synced revision must be the expected commit exactly.
    pub fn for_preview(mut self) -> Self {
        self.preview = true;
        self
    }

    pub fn seen(&self) -> Seen {
        self.seen
    }

    pub fn app(&self) -> &str {
        &self.app
    }

    /// The synced revision runs our change when it is the expected commit or a later one containing it.
    fn contains_expected(&self, revision: &str) -> Result<bool> {
        if revision.eq_ignore_ascii_case(&self.expected) {
            return Ok(true);
        }
        if self.preview || !crate::names::is_full_oid(revision) {
            return Ok(false);
        }
        self.repo.is_ancestor(&self.expected, &revision.to_lowercase())
    }
}

impl Probe for ArgoProbe<'_> {
    fn describe(&self) -> String {
        format!(
            "Argo CD application `{}` healthy and synced at {}",
            self.app,
            short_sha(&self.expected)
        )
    }

    fn observe(&mut self, left: Duration) -> Result<Verdict> {
        // The first call asks Argo CD to look at git again, so a just-moved tag is seen.
        let q = if self.first { "?refresh=normal" } else { "" };
        self.first = false;
        let deadline = Instant::now() + left;
        let silent = || Verdict::Waiting("Argo CD did not answer before the timeout".into());
        if left.is_zero() {
            return Ok(silent());
        }
        // Every request (and its retries) ends when the gate's time is up.
        let r = match self.api.rest_within(
            Method::GET,
            &format!("/api/v1/applications/{}{q}", self.app),
            None,
            left,
        ) {
            Ok(r) => r,
            Err(_) if Instant::now() >= deadline => return Ok(silent()),
            Err(e) => return Err(e),
        };
        self.seen = match r.status.as_u16() {
            200 => Seen::App,
            403 | 404 => Seen::Missing,
            _ => Seen::ApiError,
        };
        match r.status.as_u16() {
            200 => {}
            403 | 404 if self.preview => {
                // The generator makes the application on its next poll (or webhook).
                self.first = true;
                return Ok(Verdict::Waiting(format!(
                    "Argo CD application `{}` not found ({}); the pull-request generator has not made it yet, or the token may not read it",
                    self.app,
                    r.status.as_u16()
                )));
            }
            401 => return Err(Error::input("Argo CD refused the token (401); check `argocd-token`")),
            403 | 404 => {
                return Err(Error::input(format!(
                    "Argo CD application `{}` not found or the token may not read it ({}); check `argocd-app` (default {{service}}-{{env}}) and the token's project role",
                    self.app,
                    r.status.as_u16()
                )));
            }
            s => return Ok(Verdict::Waiting(format!("Argo CD answered {s}"))),
        }
        let st = &r.body["status"];
        let health = st
            .pointer("/health/status")
            .and_then(|v| v.as_str())
            .unwrap_or("Unknown");
        let sync = st.pointer("/sync/status").and_then(|v| v.as_str()).unwrap_or("Unknown");
        let mut revisions: Vec<String> = st
            .pointer("/sync/revision")
            .and_then(|v| v.as_str())
            .map(|s| vec![s.to_string()])
            .unwrap_or_default();
        revisions.extend(
            st.pointer("/sync/revisions")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(String::from)),
        );
        let phase = st
            .pointer("/operationState/phase")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let rev_short = revisions
            .first()
            .map(|r| short_sha(r).to_string())
            .unwrap_or_else(|| "none".into());
        let seen = format!(
            "health={health} sync={sync} revision={rev_short}{}",
            if phase.is_empty() {
                String::new()
            } else {
                format!(" operation={phase}")
            }
        );
        let mut at_expected = false;
        for rv in &revisions {
            if self.contains_expected(rv)? {
                at_expected = true;
                break;
            }
        }
        if !at_expected {
            return Ok(Verdict::Waiting(format!(
                "{seen} (expected {})",
                short_sha(&self.expected)
            )));
        }
        if matches!(phase, "Running" | "Terminating") {
            return Ok(Verdict::Waiting(seen));
        }
        if matches!(phase, "Failed" | "Error") {
            return Ok(Verdict::Failed(seen));
        }
        match (health, sync) {
            ("Healthy", "Synced") => Ok(Verdict::Healthy(seen)),
            ("Degraded", _) => Ok(Verdict::Failed(seen)),
            _ => Ok(Verdict::Waiting(seen)),
        }
    }
}
