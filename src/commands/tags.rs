//! The tag compare-and-swap: moving an environment's tags and rollback tags for
//! several services in one atomic update, and telling "another run did it" apart.

use super::{Ctx, short};
use crate::config::Environment;
use crate::error::{Error, Result};
use crate::repo::{Oid, RefUpdate};

impl Ctx<'_> {
    /// Moves tags of one environment for several services in one atomic update:
    /// each tag to its new commit, and each rollback tag to where the tag was.
    /// Returns, per service, the previous commit (None when unchanged or new).
    pub fn move_tags(
        &self,
        env: &Environment,
        moves: &[(String, Oid)],
        command: &str,
        set_rollback: bool,
    ) -> Result<Vec<TagMove>> {
        let mut names = Vec::new();
        for (service, _) in moves {
            names.push(format!("refs/tags/{}", self.config.tag(env, service)?));
            names.push(format!("refs/tags/{}", self.config.rollback_tag(env, service)?));
        }
        let current = self.repo.resolve_refs(&names)?;
        let mut updates = Vec::new();
        let mut out = Vec::new();
        for (i, (service, new)) in moves.iter().enumerate() {
            let tag = &names[2 * i];
            let rb = &names[2 * i + 1];
            let cur = current[2 * i].clone();
            let cur_rb = current[2 * i + 1].clone();
            let previous = cur.as_ref().map(|c| c.commit.clone());
            let changed = previous.as_deref() != Some(new.as_str());
            if changed {
                updates.push(RefUpdate {
                    name: tag.clone(),
                    expected: cur.as_ref().map(|c| c.target.clone()),
                    new: new.clone(),
                });
                if set_rollback
                    && let Some(p) = &previous
                    && cur_rb.as_ref().map(|r| &r.commit) != Some(p)
                {
                    updates.push(RefUpdate {
                        name: rb.clone(),
                        expected: cur_rb.as_ref().map(|r| r.target.clone()),
                        new: p.clone(),
                    });
                }
            }
            let rollback = if changed && set_rollback {
                previous.clone().or(cur_rb.map(|r| r.commit))
            } else {
                cur_rb.map(|r| r.commit)
            };
            out.push(TagMove {
                service: service.clone(),
                tag: tag.trim_start_matches("refs/tags/").to_string(),
                previous,
                new: new.clone(),
                changed,
                rollback,
            });
        }
        if updates.is_empty() || self.inputs.dry_run {
            return Ok(out);
        }
        let message = format!("gitops-flow {command} {}", env.name);
        let services: Vec<&str> = moves.iter().map(|(s, _)| s.as_str()).collect();
        match self.update_refs_unless_held(&updates, &message, env, &services) {
            Ok(()) => Ok(out),
            Err(Error::Conflict(msg)) => {
                // Did the same move land already (a retried request, or an identical run)?
                let now = self
                    .repo
                    .resolve_refs(&updates.iter().map(|u| u.name.clone()).collect::<Vec<_>>())?;
                let landed = updates
                    .iter()
                    .zip(&now)
                    .all(|(u, n)| n.as_ref().is_some_and(|n| n.target == u.new || n.commit == u.new));
                if landed {
                    // Another run made this very move: ours wrote nothing, so it
                    // reports where the tags are now, unchanged.
                    self.runner.notice(&format!(
                        "another run moved {} to the same revision first; nothing changed by this run",
                        updates
                            .iter()
                            .map(|u| format!("`{}`", u.name.trim_start_matches("refs/tags/")))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    let rb_names: Vec<String> = out
                        .iter()
                        .map(|m| -> Result<String> {
                            Ok(format!("refs/tags/{}", self.config.rollback_tag(env, &m.service)?))
                        })
                        .collect::<Result<_>>()?;
                    let rbs = self.repo.resolve_refs(&rb_names)?;
                    for (m, rb) in out.iter_mut().zip(rbs) {
                        if m.changed {
                            m.changed = false;
                            m.previous = Some(m.new.clone());
                            m.rollback = rb.map(|r| r.commit);
                        }
                    }
                    return Ok(out);
                }
                Err(Error::conflict(format!(
                    "{msg}. Tags now: {}",
                    updates
                        .iter()
                        .zip(&now)
                        .map(|(u, n)| format!(
                            "{} at {}",
                            u.name.trim_start_matches("refs/tags/"),
                            n.as_ref().map_or("nothing".into(), |n| short(&n.commit).to_string())
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
            Err(e) => Err(e),
        }
    }
}

pub struct TagMove {
    pub service: String,
    pub tag: String,
    pub previous: Option<Oid>,
    pub new: Oid,
    pub changed: bool,
    pub rollback: Option<Oid>,
}
