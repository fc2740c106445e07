//! `report`: what runs where.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use super::{Ctx, Outcome, short, tracks};
use crate::config::{Environment, Track};
use crate::error::Result;

pub fn run(ctx: &Ctx<'_>) -> Result<Outcome> {
    let main_head = ctx.main_head()?;
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
    // The cells of each track, read together by it (in batches, not one read a cell).
    let mut tracks: Vec<Track> = Vec::new();
    for env in &ctx.config.environments {
        if !tracks.contains(&env.track) {
            tracks.push(env.track);
        }
    }
    let mut cells: HashMap<(&str, &str), Value> = HashMap::new();
    for track in tracks {
        let group: Vec<(&Environment, &str)> = services
            .iter()
            .flat_map(|s| {
                ctx.config
                    .environments
                    .iter()
                    .filter(move |e| e.track == track)
                    .map(move |e| (e, s.as_str()))
            })
            .collect();
        let Some((first, _)) = group.first() else {
            continue;
        };
        let values = tracks::of(first).report(ctx, &group, &main_head)?;
        for ((env, service), v) in group.iter().zip(values) {
            cells.insert((service, env.name.as_str()), v);
        }
    }
    let mut table: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut missing_tags = 0usize;
    for service in &services {
        let row = table.entry(service.clone()).or_default();
        for env in &ctx.config.environments {
            let mut cell = cells
                .remove(&(service.as_str(), env.name.as_str()))
                .unwrap_or(Value::Null);
            if cell.get("missing") == Some(&json!(true)) {
                missing_tags += 1;
            }
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
