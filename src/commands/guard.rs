//! Writes a hold can stop: the holds at the main head are checked right before a
//! ref moves, under a guard on the main branch (see `update_refs_unless_held`).

use super::Ctx;
use crate::config::Environment;
use crate::error::{Error, Result};
use crate::holds::Holds;
use crate::repo::{Oid, RefUpdate};

impl Ctx<'_> {
    /// The holds on the main branch at `commit`.
    pub fn holds_at(&self, commit: &Oid) -> Result<Holds> {
        Holds::read(self.repo, commit)
    }

    /// `Error::Held` when a hold at `commit` stops any of `services` in `env`.
    pub fn check_holds(&self, commit: &Oid, services: &[&str], env: &Environment) -> Result<()> {
        let holds = self.holds_at(commit)?;
        let refusals: Vec<String> = services
            .iter()
            .filter_map(|s| holds.blocking(s, &env.name).map(|h| h.refusal(&self.inputs.command, s)))
            .collect();
        if refusals.is_empty() {
            return Ok(());
        }
        let mut unique = refusals;
        unique.dedup();
        Err(Error::Held(unique.join("; ")))
    }

    /// Test hook (debug builds only): a pause between reading the holds and writing,
    /// so that tests can land a lock in between.
    pub fn pause_before_write(&self) {
        if let Some(d) = crate::test_hooks::write_delay(self.env) {
            std::thread::sleep(d);
        }
    }

    /// Moves refs of `env` for `services` unless a hold at the main head stops them.
    /// The guarantee: the local backend moves the refs in one transaction with a
    /// check that the main branch is still where the holds were read (else it reads
    /// them again and retries); the GitHub backend makes the same check in its atomic
    /// update on the hold guard ref that `lock` moves (`HOLDS_GUARD_REF`); a backend
    /// without either (the git backend) reads the main head once more right after
    /// the update, and a hold that landed since the holds were read undoes the move
    /// (compare-and-swap back) and fails as held.
    pub fn update_refs_unless_held(
        &self,
        updates: &[RefUpdate],
        message: &str,
        env: &Environment,
        services: &[&str],
    ) -> Result<()> {
        let main_ref = self.main_ref();
        for attempt in 0..5 {
            if attempt > 0 {
                // Read the main branch afresh (the GitHub backend caches refs).
                self.repo.forget();
            }
            let head = self.main_head()?;
            self.check_holds(&head, services, env)?;
            self.pause_before_write();
            if let Some(u) = updates.iter().find(|u| u.name == main_ref) {
                // The update of the main branch itself is the compare-and-swap on
                // the commit the holds were read at.
                if u.expected.as_ref() != Some(&head) {
                    return Err(Error::conflict(format!(
                        "`{}` moved since it was read; nothing was written, re-run to act on the new state",
                        self.branch
                    )));
                }
                return self.repo.update_refs(updates, message);
            }
            match self.repo.update_refs_guarded(updates, message, &main_ref, &head) {
                Ok(None) => return Ok(()),
                Ok(Some(new_head)) => return self.undo_if_held(updates, message, env, services, &new_head),
                Err(Error::Conflict(msg)) => {
                    // Only the main branch moved (a new commit, perhaps a lock): read
                    // the holds again and retry; a moved ref of ours is a real conflict.
                    let names: Vec<String> = updates.iter().map(|u| u.name.clone()).collect();
                    let now = self.repo.resolve_refs(&names)?;
                    let ours_unmoved = updates
                        .iter()
                        .zip(&now)
                        .all(|(u, n)| u.expected.as_ref() == n.as_ref().map(|n| &n.target));
                    if !ours_unmoved {
                        return Err(Error::Conflict(msg));
                    }
                    tracing::info!("{msg}; reading the holds again");
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::conflict(format!(
            "`{}` kept moving; gave up after 5 attempts, re-run to try again",
            self.branch
        )))
    }

    /// After a move whose guard moved while it was in flight (GitHub): when a hold
    /// now stops it, move the refs back (compare-and-swap) and fail as held.
    fn undo_if_held(
        &self,
        updates: &[RefUpdate],
        message: &str,
        env: &Environment,
        services: &[&str],
        new_head: &Oid,
    ) -> Result<()> {
        // The main branch is gone (deleted meanwhile): nothing to read holds from.
        if new_head.is_empty() {
            return Ok(());
        }
        let Err(Error::Held(why)) = self.check_holds(new_head, services, env) else {
            return Ok(());
        };
        // A ref this move created is deleted again (all zeros, as `updateRefs` takes it).
        let back: Vec<RefUpdate> = updates
            .iter()
            .map(|u| RefUpdate {
                name: u.name.clone(),
                expected: Some(u.new.clone()),
                new: u.expected.clone().unwrap_or_else(|| DELETE.to_string()),
            })
            .collect();
        let names = updates
            .iter()
            .map(|u| {
                format!(
                    "`{}`",
                    u.name
                        .trim_start_matches("refs/tags/")
                        .trim_start_matches("refs/heads/")
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let undone = self
            .repo
            .update_refs(&back, &format!("{message} (undone: a hold landed)"));
        Err(Error::Held(match undone {
            Ok(()) => {
                format!("{why} (the hold landed while this move was in flight: {names} moved and were moved back)")
            }
            Err(e) => format!(
                "{why} (the hold landed while this move was in flight: {names} moved and could not be moved back: {e}; roll back by hand)"
            ),
        }))
    }
}

/// The new value of a ref update that deletes the ref (only the backends that can
/// move a guard's value in flight, GitHub's `updateRefs`, are ever asked to).
const DELETE: &str = "0000000000000000000000000000000000000000";
