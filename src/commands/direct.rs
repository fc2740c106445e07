//! The direct-commit retry loop: a change committed straight onto the main branch,
//! re-applied on the new head when another writer got there first.

use super::Ctx;
use crate::error::{Error, Result};
use crate::repo::{CommitRequest, FileChange, Oid};

impl Ctx<'_> {
    /// Commits `changes` straight onto the main branch, re-applying `edit` on a new
    /// head when another writer got there first (bounded), never overwriting.
    pub fn commit_direct(
        &self,
        message: &str,
        mut edit: impl FnMut(&Oid) -> Result<Vec<FileChange>>,
    ) -> Result<Option<(Oid, Oid)>> {
        for attempt in 0..5 {
            let head = self.main_head()?;
            let changes = edit(&head)?;
            if changes.is_empty() {
                return Ok(None);
            }
            if self.inputs.dry_run {
                return Ok(Some((String::new(), head)));
            }
            self.pause_before_write();
            let req = CommitRequest {
                branch: self.branch.clone(),
                expected_head: Some(head.clone()),
                parent: head.clone(),
                message: message.to_string(),
                changes,
            };
            match self.repo.commit(&req) {
                Ok(c) => return Ok(Some((c, head))),
                Err(Error::Conflict(msg)) if attempt < 4 => {
                    tracing::info!("{msg}; retrying on the new head");
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::conflict(format!(
            "`{}` kept moving; gave up after 5 attempts, re-run to try again",
            self.branch
        )))
    }
}
