//! Pull-request proposals: a change put on its own branch on top of the main head,
//! and the pull request opened or updated for it.

use super::{Ctx, Outcome};
use crate::error::Result;
use crate::repo::{CommitRequest, FileChange, Oid, Proposal, PullRequestSpec};

impl Ctx<'_> {
    /// Puts `changes` on branch `head_branch` as one commit on top of the main head
    /// (resetting the branch when main moved) and opens or updates its pull request.
    pub fn propose(
        &self,
        head_branch: &str,
        main_head: &Oid,
        changes: Vec<FileChange>,
        message: &str,
        spec: PullRequestSpec,
    ) -> Result<Proposed> {
        crate::names::check_ref_name("branch", head_branch)?;
        let existing = self.repo.resolve_ref(&format!("refs/heads/{head_branch}"))?;
        // Up to date when the branch already holds exactly these files on top of main.
        let mut up_to_date = false;
        if let Some(e) = &existing
            && self.repo.is_ancestor(main_head, &e.commit)?
        {
            up_to_date = true;
            for c in &changes {
                if self.repo.read_file(&e.commit, &c.path)?.as_deref() != Some(c.content.as_slice()) {
                    up_to_date = false;
                }
            }
        }
        let mut commit = existing.as_ref().map(|e| e.commit.clone());
        // In a dry run `changed` says what would change.
        let changed = !up_to_date;
        if !up_to_date && !self.inputs.dry_run {
            let req = CommitRequest {
                branch: head_branch.to_string(),
                expected_head: existing.as_ref().map(|e| e.target.clone()),
                parent: main_head.clone(),
                message: message.to_string(),
                changes,
            };
            commit = Some(self.repo.commit(&req)?);
        }
        let pr = if self.inputs.dry_run {
            Proposal::reported(&spec)
        } else {
            self.forge.propose(&spec)?
        };
        Ok(Proposed {
            commit,
            changed: changed || pr.created(),
            pr,
            spec,
        })
    }
}

/// A change put on its branch, and what the forge made of it.
pub struct Proposed {
    pub commit: Option<Oid>,
    pub changed: bool,
    pub pr: Proposal,
    pub spec: PullRequestSpec,
}

impl Proposed {
    pub fn fill(&self, out: &mut Outcome) {
        out.commit = self.commit.clone();
        out.branch = Some(self.spec.head.clone());
        out.pull_request_number = self.pr.number();
        out.pull_request_url = self.pr.url().map(String::from);
    }

    pub fn summary_line(&self) -> String {
        match &self.pr {
            Proposal::Opened { number, url, .. } => {
                format!(
                    "pull request [#{number}]({url}) `{}` → `{}`",
                    self.spec.head, self.spec.base
                )
            }
            Proposal::Reported { title, head, base } => format!(
                "pull request `{head}` → `{base}`: {title} (reported, not opened by gitops-flow: no forge API on this backend)"
            ),
        }
    }
}
