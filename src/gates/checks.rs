//! The commit-status gate: every status context and check run whose name matches
//! the pattern succeeded, on the expected revision or a later commit on main
//! that contains it (Flux reports on the newest commit only).

use std::time::{Duration, Instant};

use super::{Probe, Verdict, glob};
use crate::error::Result;
use crate::names::short_sha;
use crate::repo::{Check, CheckState, ForgeApi, Git, Oid};

pub struct ChecksProbe<'a> {
    /// Forgotten after a look without a verdict, so that later reads see the new state.
    pub repo: &'a dyn Git,
    /// Where the statuses and check runs (and the main head) are read.
    pub checks: &'a dyn ForgeApi,
    pub expected: Oid,
    pub main_ref: String,
    pub pattern: String,
}

impl ChecksProbe<'_> {
    fn verdict_at(&self, sha: &Oid, checks: &[Check]) -> Option<Verdict> {
        let matching: Vec<_> = checks.iter().filter(|c| glob(&self.pattern, &c.name)).collect();
        if matching.is_empty() {
            return None;
        }
        let list = |s: CheckState| {
            matching
                .iter()
                .filter(|c| c.state == s)
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let at = short_sha(sha);
        if matching.iter().any(|c| c.state == CheckState::Failure) {
            return Some(Verdict::Failed(format!(
                "on {at}: failed: {}",
                list(CheckState::Failure)
            )));
        }
        if matching.iter().all(|c| c.state == CheckState::Success) {
            return Some(Verdict::Healthy(format!("on {at}: {}", list(CheckState::Success))));
        }
        Some(Verdict::Waiting(format!(
            "on {at}: pending: {}",
            list(CheckState::Pending)
        )))
    }
}

impl Probe for ChecksProbe<'_> {
    fn describe(&self) -> String {
        format!(
            "statuses/check runs `{}` on {} or later",
            self.pattern,
            short_sha(&self.expected)
        )
    }

    fn observe(&mut self, left: Duration) -> Result<Verdict> {
        let silent = || Verdict::Waiting("GitHub did not answer before the timeout".into());
        if left.is_zero() {
            return Ok(silent());
        }
        let deadline = Instant::now() + left;
        // One look (one request on GitHub): our commit's checks and the main head's.
        let look = match self.checks.commit_checks(&self.expected, &self.main_ref, left) {
            Ok(l) => l,
            Err(_) if Instant::now() >= deadline => return Ok(silent()),
            Err(e) => return Err(e),
        };
        if let Some(v) = self.verdict_at(&self.expected, &look.checks) {
            return Ok(v);
        }
        // Flux reports on the newest commit it applied: the main head when it contains ours.
        self.repo.forget();
        if let Some((h, checks)) = &look.head
            && let Some(v) = self.verdict_at(h, checks)
        {
            return Ok(v);
        }
        Ok(Verdict::Waiting(format!(
            "no status or check run matching `{}` yet",
            self.pattern
        )))
    }
}
