//! Health gates: is a service healthy in an environment at the expected revision?
//! Argo CD (application health, sync status and synced revision) or GitHub commit
//! statuses and check runs (Flux's notification-controller, any CI).

pub mod argocd;
pub mod checks;

use std::time::{Duration, Instant};

use crate::actions::Runner;
use crate::error::Result;

/// One observation of the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Healthy(String),
    /// Not there yet (wrong revision, progressing, out of sync, pending checks).
    Waiting(String),
    /// Will not get better by waiting (degraded at the expected revision, a failed check).
    Failed(String),
}

pub trait Probe {
    /// One look, taking at most `left` (the time the gate has left).
    fn observe(&mut self, left: Duration) -> Result<Verdict>;
    fn describe(&self) -> String;
}

#[derive(Debug, Clone)]
pub struct Polling {
    pub first: Duration,
    pub max: Duration,
}

impl Polling {
    pub fn from_env(env: &std::collections::HashMap<String, String>) -> Polling {
        match env.get("GITOPS_FLOW_POLL_MS").and_then(|v| v.parse::<u64>().ok()) {
            Some(ms) => Polling {
                first: Duration::from_millis(ms),
                max: Duration::from_millis(ms * 4),
            },
            None => Polling {
                first: Duration::from_secs(5),
                max: Duration::from_secs(30),
            },
        }
    }
}

/// The gate's result: healthy or not, and the last thing seen.
#[derive(Debug, Clone)]
pub struct GateResult {
    pub healthy: bool,
    pub last: String,
    pub elapsed: Duration,
}

/// Polls `probe` with backoff until healthy, failed, or `timeout`.
pub fn wait(runner: &Runner, probe: &mut dyn Probe, timeout: Duration, polling: &Polling) -> Result<GateResult> {
    let start = Instant::now();
    let mut interval = polling.first;
    runner.group(&format!(
        "health gate: {} (timeout {}s)",
        probe.describe(),
        timeout.as_secs()
    ));
    let result = loop {
        let v = probe.observe(timeout.saturating_sub(start.elapsed()))?;
        let t = start.elapsed().as_secs_f32();
        match v {
            Verdict::Healthy(s) => {
                runner.info(&format!("[{t:>6.1}s] healthy: {s}"));
                break GateResult {
                    healthy: true,
                    last: s,
                    elapsed: start.elapsed(),
                };
            }
            Verdict::Failed(s) => {
                runner.info(&format!("[{t:>6.1}s] failed: {s}"));
                break GateResult {
                    healthy: false,
                    last: s,
                    elapsed: start.elapsed(),
                };
            }
            Verdict::Waiting(s) => {
                runner.info(&format!("[{t:>6.1}s] waiting: {s}"));
                if start.elapsed() + interval > timeout {
                    break GateResult {
                        healthy: false,
                        last: format!("timed out after {}s; last seen: {s}", timeout.as_secs()),
                        elapsed: start.elapsed(),
                    };
                }
                std::thread::sleep(interval);
                interval = (interval * 3 / 2).min(polling.max);
            }
        }
    };
    runner.end_group();
    Ok(result)
}

/// `*` and `?` wildcards, case-insensitive (Flux lower-cases its contexts).
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob(
            "kustomization/payments-prod/*",
            "kustomization/payments-prod/0c9c2e41"
        ));
        assert!(glob("Kustomization/*", "kustomization/x/1"));
        assert!(!glob(
            "kustomization/payments-prod/*",
            "kustomization/payments-staging/0c9c2e41"
        ));
        assert!(glob("ci/*-check", "ci/unit-check"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
    }
}
