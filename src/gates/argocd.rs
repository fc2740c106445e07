//! The Argo CD gate: `GET /api/v1/applications/{app}`.

use std::time::{Duration, Instant};

use http::Method;

use super::{Probe, Verdict};
use crate::error::{Error, Result};
use crate::names::short_sha;
use crate::repo::github::{Api, RetryPolicy};
use crate::repo::{Git, Oid};
use crate::secret::Secret;

/// When the gate asks Argo CD to sync the application (manual-sync applications).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Never: Argo CD syncs by itself (auto-sync).
    #[default]
    Off,
    /// After a move: sync unless the application is already synced at the expected
    /// revision.
    AfterMove,
    /// `status`: sync only an application that is OutOfSync at the expected revision.
    WhenOutOfSync,
}

/// What asking for a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kick {
    /// Argo CD accepted the sync.
    Started,
    /// An operation is running already; it was not interrupted.
    Running,
    /// Nothing to sync (synced at the expected revision, or not asked for).
    NotNeeded,
}

pub struct ArgoProbe<'a> {
    api: Api,
    app: String,
    expected: Oid,
    repo: &'a dyn Git,
    first: bool,
    sync: SyncMode,
    /// A sync was started (or found running) by this run: never start another.
    kicked: bool,
    /// Since the sync this run started, an operation was seen running (until then
    /// a failed phase is the earlier operation's).
    ran_since_kick: bool,
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
    pub fn new(server: &str, token: &Secret, app: &str, expected: Oid, repo: &'a dyn Git) -> Result<Self> {
        crate::names::check_ref_component("argocd-app", app)?;
        let api = Api::new(server, server, token, RetryPolicy::default())?;
        Ok(ArgoProbe {
            api,
            app: app.to_string(),
            expected,
            repo,
            first: true,
            sync: SyncMode::Off,
            kicked: false,
            ran_since_kick: false,
            preview: false,
            seen: Seen::Nothing,
        })
    }

    /// Asks Argo CD to sync the application when `mode` says so.
    pub fn with_sync(mut self, mode: SyncMode) -> Self {
        self.sync = mode;
        self
    }

    /// One look at the application (asking Argo CD to refresh it first) and, when
    /// the sync mode calls for it, a sync: for a move without a gate.
    pub fn kick(&mut self, left: Duration) -> Result<Kick> {
        let r = self.api.rest_within(
            Method::GET,
            &format!("/api/v1/applications/{}?refresh=normal", self.app),
            None,
            left,
        )?;
        self.first = false;
        match r.status.as_u16() {
            200 => {}
            401 => return Err(Error::input("Argo CD refused the token (401); check `argocd-token`")),
            s => {
                return Err(Error::failed(format!(
                    "Argo CD did not return application `{}` ({s}: {}); check `argocd-app` and the token's project role",
                    self.app,
                    argo_message(&r.body)
                )));
            }
        }
        let view = AppView::of(&r.body);
        let at_expected = self.at_expected(&view.revisions)?;
        self.maybe_sync(&view, at_expected, left)
    }

    fn at_expected(&self, revisions: &[String]) -> Result<bool> {
        for rv in revisions {
            if self.contains_expected(rv)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Starts a sync when the mode calls for it and no operation is running.
    fn maybe_sync(&mut self, view: &AppView, at_expected: bool, left: Duration) -> Result<Kick> {
        let wanted = match self.sync {
            SyncMode::Off => false,
            // Exactly the expected commit: after a rollback, a later revision
            // "contains" the target but runs newer code.
            SyncMode::AfterMove => {
                !(view.sync == "Synced" && view.revisions.iter().any(|r| r.eq_ignore_ascii_case(&self.expected)))
            }
            SyncMode::WhenOutOfSync => view.sync == "OutOfSync" && at_expected,
        };
        if self.kicked || !wanted {
            return Ok(Kick::NotNeeded);
        }
        if matches!(view.phase.as_str(), "Running" | "Terminating") {
            // Never interrupt an operation; the gate waits for it, then looks again.
            return Ok(Kick::Running);
        }
        // The application's own target (tag, branch) and sync options: gitops-flow
        // asks for a sync, never for another revision or a prune.
        let body = serde_json::json!({ "name": self.app });
        let r = self.api.rest_within(
            Method::POST,
            &format!("/api/v1/applications/{}/sync", self.app),
            Some(&body),
            left,
        )?;
        let message = argo_message(&r.body);
        match r.status.as_u16() {
            200 => {
                self.kicked = true;
                Ok(Kick::Started)
            }
            // Argo CD's answer when an operation started meanwhile (or our own
            // retried request landed): that one is not interrupted either.
            400 | 409 if message.contains("another operation is already in progress") => Ok(Kick::Running),
            401 => Err(Error::input("Argo CD refused the token (401); check `argocd-token`")),
            s => Err(Error::failed(format!(
                "Argo CD refused to sync application `{}` ({s}): {message}; sync it in Argo CD (`argocd app sync {}`) or fix what it names",
                self.app, self.app
            ))),
        }
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
        let view = AppView::of(&r.body);
        let at_expected = self.at_expected(&view.revisions)?;
        let note = match self.maybe_sync(&view, at_expected, left)? {
            Kick::Started => {
                return Ok(Verdict::Waiting(format!(
                    "asked Argo CD to sync `{}` (it was {} at {})",
                    self.app,
                    view.sync,
                    view.revisions.first().map_or("no revision", |r| short_sha(r))
                )));
            }
            Kick::Running => " (an operation is running: not interrupted, sync asked for after it)",
            Kick::NotNeeded => "",
        };
        let AppView {
            health,
            sync,
            revisions,
            phase,
        } = view;
        let (health, sync, phase) = (health.as_str(), sync.as_str(), phase.as_str());
        let rev_short = revisions
            .first()
            .map(|r| short_sha(r).to_string())
            .unwrap_or_else(|| "none".into());
        let seen = format!(
            "health={health} sync={sync} revision={rev_short}{}{note}",
            if phase.is_empty() {
                String::new()
            } else {
                format!(" operation={phase}")
            }
        );
        if self.kicked && matches!(phase, "Running" | "Terminating") {
            self.ran_since_kick = true;
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
        if matches!(phase, "Failed" | "Error") && self.kicked && !self.ran_since_kick && self.sync != SyncMode::Off {
            return Ok(Verdict::Waiting(format!(
                "{seen}: the earlier operation's result; waiting for the sync asked for to start"
            )));
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

/// The parts of an Application the gate reads.
struct AppView {
    health: String,
    sync: String,
    /// `status.sync.revision`, then `status.sync.revisions[]` (multi-source).
    revisions: Vec<String>,
    phase: String,
}

impl AppView {
    fn of(app: &serde_json::Value) -> AppView {
        let st = &app["status"];
        let text = |p: &str, d: &str| st.pointer(p).and_then(|v| v.as_str()).unwrap_or(d).to_string();
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
        AppView {
            health: text("/health/status", "Unknown"),
            sync: text("/sync/status", "Unknown"),
            revisions,
            phase: text("/operationState/phase", ""),
        }
    }
}

/// Argo CD's error text (`runtimeError.message`), or the body as it came.
fn argo_message(body: &serde_json::Value) -> String {
    body.get("message")
        .and_then(|m| m.as_str())
        .or_else(|| body.get("error").and_then(|m| m.as_str()))
        .map(String::from)
        .unwrap_or_else(|| body.to_string().chars().take(300).collect())
}
