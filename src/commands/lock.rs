//! `lock` / `unlock`: record or remove a hold in `.gitops-flow/holds.yaml` on the
//! main branch, as a direct commit (compare-and-swap on the branch, re-applied on
//! a new head like every direct commit).

use super::{Ctx, Outcome};
use crate::config::Environment;
use crate::error::{Error, Result};
use crate::holds::{HOLDS_FILE, HOLDS_GUARD_REF, Hold, Holds, utc};
use crate::repo::{FileChange, Oid, trailers};

pub fn run(ctx: &Ctx<'_>, lock: bool) -> Result<Outcome> {
    let command = &ctx.inputs.command;
    let env_name = ctx.inputs.environment.clone().ok_or_else(|| {
        Error::input(format!(
            "`{command}` needs an environment; pass input `environment` (and `service` to hold one service, none to freeze every service)"
        ))
    })?;
    let env = ctx.config.env(&env_name)?.clone();
    let service = match &ctx.inputs.service {
        Some(s) => {
            ctx.config.service(s)?;
            Some(s.clone())
        }
        None => None,
    };
    let reason = match (lock, &ctx.inputs.reason) {
        (true, None) => {
            return Err(Error::input(
                "`lock` needs a reason; pass input `reason` (why it is held, for whoever finds it held)",
            ));
        }
        (_, r) => r.clone(),
    };
    let hold = Hold {
        environment: env.name.clone(),
        service: service.clone(),
        by: ctx.actor(),
        at: utc(ctx.now),
        reason: reason.unwrap_or_default(),
    };
    if lock {
        take(ctx, &env, hold)
    } else {
        release(ctx, &env, hold)
    }
}

fn commit_message(verb: &str, hold: &Hold, why: &str) -> String {
    let what = match &hold.service {
        Some(s) => format!("{s} in {}", hold.environment),
        None => format!("{} (every service)", hold.environment),
    };
    format!(
        "{verb} {what}\n\n{why}\n\n{}",
        trailers(
            if verb == "Hold" { "lock" } else { "unlock" },
            hold.service.as_deref().unwrap_or("*"),
            Some(&hold.environment),
            None
        )
    )
}

fn take(ctx: &Ctx<'_>, env: &Environment, hold: Hold) -> Result<Outcome> {
    let mut out = Outcome {
        service: hold.service.clone(),
        environment: Some(env.name.clone()),
        held: true,
        ..Outcome::default()
    };
    let message = commit_message(
        "Hold",
        &hold,
        &format!("reason: {}\nby: {}\nat: {}", hold.reason, hold.by, hold.at),
    );
    // The hold as it stands at the head we commit on (an earlier one is kept).
    let mut existing: Option<Hold> = None;
    let mut found_at: Option<Oid> = None;
    let result = commit_hold(ctx, &message, |head| {
        let mut holds = Holds::read(ctx.repo, head)?;
        if let Some(h) = holds.find(&hold.environment, hold.service.as_deref()) {
            existing = Some(h.clone());
            found_at = Some(head.clone());
            return Ok(Vec::new());
        }
        existing = None;
        holds.add(hold.clone());
        Ok(vec![FileChange {
            path: HOLDS_FILE.into(),
            content: holds.render().into_bytes(),
        }])
    })?;
    match result {
        Some((commit, _)) => {
            out.changed = true;
            out.commit = Some(commit).filter(|c| !c.is_empty());
            out.revision = out.commit.clone();
            out.branch = Some(ctx.branch.clone());
            out.summary = format!(
                "### gitops-flow lock\n\n⏸️ {} held by {} at {}: {}\n\nRecorded in `{HOLDS_FILE}` on `{}` {}. `stage`, `deploy` and `promote` refuse to move it; `rollback` stays allowed. Remove it with {}.\n",
                hold.subject(),
                hold.by,
                hold.at,
                hold.reason,
                ctx.branch,
                out.commit
                    .as_deref()
                    .map(|c| ctx.link_commit(c))
                    .unwrap_or_else(|| "(dry run)".into()),
                hold.unlock_hint()
            );
        }
        None => {
            // Held already: the guard is moved to where the hold was found too (a
            // lock whose own move failed, or that is still under way, is completed).
            if let Some(at) = &found_at {
                guard_moved(ctx, at);
            }
            let h = existing.unwrap_or(hold);
            ctx.runner.notice(&format!(
                "{} is already held by {} since {} (\"{}\"); nothing changed",
                h.subject(),
                h.by,
                h.at,
                h.reason
            ));
            out.summary = format!(
                "### gitops-flow lock\n\n{} is already held by {} since {}: {}\n",
                h.subject(),
                h.by,
                h.at,
                h.reason
            );
        }
    }
    Ok(out)
}

fn release(ctx: &Ctx<'_>, env: &Environment, hold: Hold) -> Result<Outcome> {
    let mut out = Outcome {
        service: hold.service.clone(),
        environment: Some(env.name.clone()),
        ..Outcome::default()
    };
    let mut removed: Option<Hold> = None;
    let mut after = Holds::default();
    let message = commit_message("Release", &hold, &format!("by: {}\nat: {}", hold.by, hold.at));
    let result = ctx.commit_direct(&message, |head| {
        let mut holds = Holds::read(ctx.repo, head)?;
        removed = holds.remove(&hold.environment, hold.service.as_deref());
        after = holds.clone();
        if removed.is_none() {
            return Ok(Vec::new());
        }
        Ok(vec![FileChange {
            path: HOLDS_FILE.into(),
            content: holds.render().into_bytes(),
        }])
    })?;
    // What still stops this target after the release (a freeze, or the service's own hold).
    let still = match &hold.service {
        Some(s) => after.blocking(s, &env.name).cloned(),
        None => None,
    };
    let others: Vec<String> = match &hold.service {
        None => after
            .holds
            .iter()
            .filter(|h| h.environment == env.name)
            .map(Hold::subject)
            .collect(),
        Some(_) => Vec::new(),
    };
    out.held = still.is_some();
    match (result, removed) {
        (Some((commit, _)), Some(r)) => {
            out.changed = true;
            out.commit = Some(commit).filter(|c| !c.is_empty());
            out.revision = out.commit.clone();
            out.branch = Some(ctx.branch.clone());
            out.summary = format!(
                "### gitops-flow unlock\n\n▶️ {} released (held by {} since {}: {}), {}\n",
                r.subject(),
                r.by,
                r.at,
                r.reason,
                out.commit
                    .as_deref()
                    .map(|c| ctx.link_commit(c))
                    .unwrap_or_else(|| "(dry run)".into())
            );
        }
        _ => {
            ctx.runner
                .notice(&format!("{} is not held; nothing changed", hold.subject()));
            out.summary = format!(
                "### gitops-flow unlock\n\n{} is not held: nothing to do.\n",
                hold.subject()
            );
        }
    }
    if let Some(s) = &still {
        let msg = format!(
            "{} is still held: {} by {} since {} (\"{}\")",
            hold.service
                .as_deref()
                .map_or(String::new(), |s| format!("`{s}` in `{}`", env.name)),
            s.subject(),
            s.by,
            s.at,
            s.reason
        );
        ctx.runner.notice(&msg);
        out.summary.push_str(&format!("\n{msg}; unlock that too to move it.\n"));
    }
    if !others.is_empty() {
        let msg = format!("holds on single services of `{}` stay: {}", env.name, others.join(", "));
        ctx.runner.notice(&msg);
        out.summary.push_str(&format!("\n{msg}.\n"));
    }
    Ok(out)
}

/// `rollback-on-failure` rolled `service` back in `env`: hold it there (unless the
/// environment says `hold-on-rollback: false`), so that the next automatic
/// promotion does not undo the rollback. Returns the summary line.
pub fn hold_after_rollback(ctx: &Ctx<'_>, env: &Environment, service: &str, why: &str) -> Result<Option<String>> {
    if !env.hold_on_rollback {
        return Ok(None);
    }
    let hold = Hold {
        environment: env.name.clone(),
        service: Some(service.to_string()),
        by: ctx.actor(),
        at: utc(ctx.now),
        reason: format!("rolled back automatically: {}", why.replace(char::is_control, " "))
            .chars()
            .take(crate::holds::MAX_REASON)
            .collect(),
    };
    let message = commit_message(
        "Hold",
        &hold,
        &format!(
            "`{}` rolled {service} back after a failed health gate.\nreason: {}\nby: {}\nat: {}",
            ctx.inputs.command, hold.reason, hold.by, hold.at
        ),
    );
    let mut already = false;
    let mut found_at: Option<Oid> = None;
    let result = commit_hold(ctx, &message, |head| {
        let mut holds = Holds::read(ctx.repo, head)?;
        already = !holds.add(hold.clone());
        if already {
            found_at = Some(head.clone());
            return Ok(Vec::new());
        }
        Ok(vec![FileChange {
            path: HOLDS_FILE.into(),
            content: holds.render().into_bytes(),
        }])
    })?;
    let line = match result {
        Some((commit, _)) => format!(
            "⏸️ {} is now held ({}), so that no promotion undoes the rollback; when it may move again, run {}",
            hold.subject(),
            if commit.is_empty() {
                "dry run".to_string()
            } else {
                format!("{HOLDS_FILE} {}", ctx.link_commit(&commit))
            },
            hold.unlock_hint()
        ),
        None => {
            if let Some(at) = &found_at {
                guard_moved(ctx, at);
            }
            format!("{} was already held; the hold stays", hold.subject())
        }
    };
    Ok(Some(line))
}

/// Commits a new hold, then moves the hold guard (`HOLDS_GUARD_REF`) to that commit,
/// so that a ref move already under way with the holds it read before cannot land.
fn commit_hold(
    ctx: &Ctx<'_>,
    message: &str,
    edit: impl FnMut(&Oid) -> Result<Vec<FileChange>>,
) -> Result<Option<(Oid, Oid)>> {
    let result = ctx.commit_direct(message, edit)?;
    if let Some((commit, _)) = &result
        && !commit.is_empty()
    {
        guard_moved(ctx, commit);
    }
    Ok(result)
}

/// Moves the hold guard to `commit`, where a hold is recorded; a failure is a warning
/// (the hold itself stands).
fn guard_moved(ctx: &Ctx<'_>, commit: &Oid) {
    if ctx.inputs.dry_run {
        return;
    }
    if let Err(e) = ctx.repo.holds_recorded(commit) {
        ctx.runner.warning(&format!(
            "the hold is recorded ({}), but `{HOLDS_GUARD_REF}` could not be moved to it ({e}): a promotion that read the holds before it may still land: check with `report` that nothing moved after the hold, and re-run `lock` to move it",
            crate::names::short_sha(commit)
        ));
    }
}
