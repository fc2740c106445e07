//! `report`: what runs where.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use super::state::{Depth, EnvState, Source};
use super::{Ctx, Outcome, short};
use crate::config::Track;
use crate::error::Result;
use crate::repo::RefTarget;

pub fn run(ctx: &Ctx<'_>) -> Result<Outcome> {
    let main_head = ctx.main_head()?;
    let tags: HashMap<String, RefTarget> = if ctx.config.environments.iter().any(|e| e.track == Track::Tag) {
        ctx.repo.list_refs("refs/tags/")?.into_iter().collect()
    } else {
        HashMap::new()
    };
    let mut services: BTreeSet<String> = ctx.config.services.keys().cloned().collect();
    if let Some(s) = &ctx.inputs.service {
        ctx.config.service(s)?;
        services = [s.clone()].into();
    } else if !ctx.config.services_listed {
        for name in ctx.repo.list_dir(&main_head, "charts")? {
            if crate::names::check_ref_component("service", &name).is_ok() {
                services.insert(name);
            }
        }
    }
    let holds = match ctx.holds_at(&main_head) {
        Ok(h) => h,
        Err(e) => {
            ctx.runner.warning(&e.to_string());
            crate::holds::Holds::default()
        }
    };
    let mut branch_heads: HashMap<String, Option<String>> = HashMap::new();
    // Every file the cells read, in one batch (250 a request on GitHub), instead of
    // one request per cell.
    let mut reads: Vec<(String, String)> = Vec::new();
    for service in &services {
        for env in &ctx.config.environments {
            match env.track {
                Track::Tag => {
                    if let (Ok(tag), Ok(chart)) = (ctx.config.tag(env, service), ctx.config.chart_dir(service))
                        && let Some(t) = tags.get(&format!("refs/tags/{tag}"))
                    {
                        reads.push((t.commit.clone(), format!("{chart}/Chart.yaml")));
                    }
                }
                // File cells: read with the history walk that gives their revision.
                Track::File | Track::Branch => {}
            }
        }
    }
    ctx.repo.read_files(&reads)?;
    let mut table: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut missing_tags = 0usize;
    for service in &services {
        let row = table.entry(service.clone()).or_default();
        for env in &ctx.config.environments {
            let cell = match env.track {
                Track::Tag => {
                    let tag = ctx.config.tag(env, service)?;
                    let rb = ctx.config.rollback_tag(env, service)?;
                    let t = tags.get(&format!("refs/tags/{tag}"));
                    let r = tags.get(&format!("refs/tags/{rb}"));
                    let state = EnvState::of_tag(ctx, service, tag.clone(), rb, t, r, Depth::Version);
                    match &state.revision {
                        None => {
                            missing_tags += 1;
                            json!({"track": "tag", "tag": tag, "missing": true})
                        }
                        Some(rev) => {
                            let mut v = json!({"track": "tag", "tag": tag, "revision": rev, "rollback-revision": state.rollback.as_ref().map(|r| r.revision.clone())});
                            match state.version {
                                Ok(ver) => v["version"] = json!(ver),
                                Err(e) => v["error"] = json!(e.to_string()),
                            }
                            v
                        }
                    }
                }
                Track::File => {
                    let state = EnvState::read(ctx, env, service, &main_head, Depth::Full)?;
                    let file = match &state.source {
                        Source::File { files } => files.first().cloned(),
                        _ => None,
                    };
                    match state.version {
                        Ok(ver) => {
                            json!({"track": "file", "file": file, "version": ver, "revision": state.revision})
                        }
                        Err(e) => {
                            json!({"track": "file", "file": file, "error": e.to_string()})
                        }
                    }
                }
                Track::Branch => {
                    let b = env.branch.clone().unwrap_or_default();
                    let head = match branch_heads.get(&b) {
                        Some(h) => h.clone(),
                        None => {
                            let h = ctx.repo.resolve_ref(&format!("refs/heads/{b}"))?.map(|r| r.commit);
                            branch_heads.insert(b.clone(), h.clone());
                            h
                        }
                    };
                    match head {
                        None => {
                            json!({"track": "branch", "branch": b, "error": "branch not found"})
                        }
                        Some(h) => {
                            match EnvState::of_branch(ctx, env, service, Some(h.clone()), Depth::Version)?.version {
                                Ok(ver) => {
                                    json!({"track": "branch", "branch": b, "version": ver, "revision": h})
                                }
                                Err(e) => {
                                    json!({"track": "branch", "branch": b, "revision": h, "error": e.to_string()})
                                }
                            }
                        }
                    }
                }
            };
            let mut cell = cell;
            if let Some(h) = holds.blocking(service, &env.name) {
                cell["hold"] = json!({"by": h.by, "at": h.at, "reason": h.reason, "freeze": h.service.is_none()});
            }
            if let Some(e) = cell.get("error").and_then(|e| e.as_str()) {
                warnings.push(format!("{service} in {}: {e}", env.name));
            }
            row.insert(env.name.clone(), cell);
        }
    }
    // Warn for every broken cell (up to 20), and once for environments without a tag.
    for w in warnings.iter().take(20) {
        ctx.runner.warning(w);
    }
    if missing_tags > 0 {
        ctx.runner.warning(&format!(
            "{missing_tags} service/environment cells have no tag yet (never deployed there); shown as such in the report"
        ));
    }
    let mut md = String::from("### gitops-flow report\n\n| service |");
    for env in &ctx.config.environments {
        md.push_str(&format!(" {} |", env.name));
    }
    md.push_str("\n|---|");
    md.push_str(&"---|".repeat(ctx.config.environments.len()));
    md.push('\n');
    for (service, row) in &table {
        md.push_str(&format!("| `{service}` |"));
        for env in &ctx.config.environments {
            let c = &row[&env.name];
            let text = match (
                c.get("version").and_then(|v| v.as_str()),
                c.get("revision").and_then(|v| v.as_str()),
                c.get("error").and_then(|v| v.as_str()),
            ) {
                (_, _, Some(e)) => format!("⚠️ {e}"),
                (Some(v), Some(r), None) => {
                    let rb = c
                        .get("rollback-revision")
                        .and_then(|v| v.as_str())
                        .map(|r| format!(" (rollback {})", short(r)))
                        .unwrap_or_default();
                    format!("`{v}` {}{rb}", ctx.link_commit(r))
                }
                (Some(v), None, None) => format!("`{v}`"),
                _ if c.get("missing").is_some() => "not deployed (no tag)".into(),
                _ => "—".into(),
            };
            let held = if c.get("hold").is_some() { " ⏸️ held" } else { "" };
            md.push_str(&format!(" {text}{held} |"));
        }
        md.push('\n');
    }
    if !holds.holds.is_empty() {
        md.push_str(&format!(
            "\n#### Holds (`{}` on `{}`)\n\n| held | by | since | reason |\n|---|---|---|---|\n",
            crate::holds::HOLDS_FILE,
            ctx.branch
        ));
        for h in &holds.holds {
            md.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                h.subject(),
                h.by.replace('|', "\\|"),
                h.at,
                h.reason.replace('|', "\\|")
            ));
        }
    }
    Ok(Outcome {
        report: Some(serde_json::to_value(&table).unwrap_or(Value::Null)),
        summary: md,
        ..Outcome::default()
    })
}
