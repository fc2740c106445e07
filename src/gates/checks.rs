//! The commit-status gate: every status context and check run whose name matches
//! the pattern succeeded, on the expected revision or a later commit on main
//! that contains it (Flux reports on the newest commit only).

use super::{Probe, Verdict, glob};
use crate::error::Result;
use crate::names::short_sha;
use crate::repo::{CheckState, ForgeApi, Git, Oid};

pub struct ChecksProbe<'a> {
    pub repo: &'a dyn Git,
    /// Where the statuses and check runs are read.
    pub checks: &'a dyn ForgeApi,
    pub expected: Oid,
    pub main_ref: String,
    pub pattern: String,
}

impl ChecksProbe<'_> {
    fn verdict_at(&self, sha: &Oid) -> Result<Option<Verdict>> {
        let checks = self.checks.commit_checks(sha)?;
        let matching: Vec<_> = checks.iter().filter(|c| glob(&self.pattern, &c.name)).collect();
        if matching.is_empty() {
            return Ok(None);
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
            return Ok(Some(Verdict::Failed(format!(
                "on {at}: failed: {}",
                list(CheckState::Failure)
            ))));
        }
        if matching.iter().all(|c| c.state == CheckState::Success) {
            return Ok(Some(Verdict::Healthy(format!(
                "on {at}: {}",
                list(CheckState::Success)
            ))));
        }
        Ok(Some(Verdict::Waiting(format!(
            "on {at}: pending: {}",
            list(CheckState::Pending)
        ))))
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

    fn observe(&mut self, _left: std::time::Duration) -> Result<Verdict> {
        if let Some(v) = self.verdict_at(&self.expected)? {
            return Ok(v);
        }
        // Flux reports on the newest commit it applied: look at the main head when it contains ours.
        self.repo.forget();
        let head = self.repo.resolve_ref(&self.main_ref)?;
        if let Some(h) = head
            && h.commit != self.expected
            && self.repo.is_ancestor(&self.expected, &h.commit)?
            && let Some(v) = self.verdict_at(&h.commit)?
        {
            return Ok(v);
        }
        Ok(Verdict::Waiting(format!(
            "no status or check run matching `{}` yet",
            self.pattern
        )))
    }
}
