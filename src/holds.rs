//! Holds: a (service, environment) — or a whole environment, a freeze — that
//! `stage`, `deploy` and `promote` must not move, recorded by `lock` and removed by
//! `unlock` in the GitOps repository itself, in one file on the main branch:
//!
//! ```yaml
//! # Holds recorded by gitops-flow `lock`; `unlock` removes them.
//! holds:
//!   - environment: "production"
//!     service: "payments"          # absent: the whole environment (a freeze)
//!     by: "octocat"
//!     at: "2024-05-01T12:00:00Z"
//!     reason: "rolled back after the gate failed"
//! ```
//!
//! The file is gitops-flow's own: it is written whole (every string double-quoted,
//! holds in the order they were taken); comments added by hand are not kept.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Place, Result};
use crate::repo::{Git, Oid};

/// Where the holds live, relative to the root of the main branch.
pub const HOLDS_FILE: &str = ".gitops-flow/holds.yaml";
/// A ref that `lock` moves to its commit once the hold is on the main branch, so that
/// a ref move can check in the same atomic update that no hold landed since the
/// holds were read (GitHub backend; never a branch or tag, so nothing reacts to it).
pub const HOLDS_GUARD_REF: &str = "refs/gitops-flow/holds";

/// The longest `reason` accepted (a sentence, not a document).
pub const MAX_REASON: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hold {
    pub environment: String,
    /// `None`: every service of the environment (a freeze).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Who took it: `GITHUB_ACTOR`, else the git identity.
    pub by: String,
    /// When, UTC, RFC 3339 (`2024-05-01T12:00:00Z`).
    pub at: String,
    pub reason: String,
}

impl Hold {
    /// `payments` in `production`, or `production` (all services).
    pub fn subject(&self) -> String {
        match &self.service {
            Some(s) => format!("`{s}` in `{}`", self.environment),
            None => format!("`{}` (every service)", self.environment),
        }
    }

    /// The command that removes it, for messages.
    pub fn unlock_hint(&self) -> String {
        match &self.service {
            Some(s) => format!(
                "`gitops-flow unlock --environment {} --service {s}` (action: `command: unlock`, `environment: {}`, `service: {s}`)",
                self.environment, self.environment
            ),
            None => format!(
                "`gitops-flow unlock --environment {}` (action: `command: unlock`, `environment: {}`)",
                self.environment, self.environment
            ),
        }
    }

    /// The whole story of a hold, for the `::error::` of a refused move.
    pub fn refusal(&self, command: &str, service: &str) -> String {
        let what = match &self.service {
            Some(_) => format!("`{service}` in `{}` is held", self.environment),
            None => format!("`{}` is frozen (a hold on every service)", self.environment),
        };
        format!(
            "{what}: locked by {} at {} because \"{}\"; `{command}` moved nothing. When it may move again, run {}",
            self.by,
            self.at,
            self.reason,
            self.unlock_hint()
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holds {
    #[serde(default)]
    pub holds: Vec<Hold>,
}

impl Holds {
    /// Parses the holds file; a file that cannot be read is an error naming it
    /// (promotions stop rather than guess).
    pub fn parse(text: &str) -> Result<Holds> {
        if text.trim().is_empty() {
            return Ok(Holds::default());
        }
        let holds: Holds = serde_saphyr::from_str(text).map_err(|e| {
            let line = e.location().map(|l| l.line());
            Error::input_at(
                format!(
                    "{HOLDS_FILE} on the main branch is not a valid holds file: {}; fix it (or remove the broken entry) on the main branch",
                    e.to_string().lines().next().unwrap_or("invalid YAML")
                ),
                Place {
                    file: HOLDS_FILE.into(),
                    line,
                    column: None,
                },
            )
        })?;
        Ok(holds)
    }

    /// Reads the holds at `commit` (none when the file is absent).
    pub fn read(repo: &dyn Git, commit: &Oid) -> Result<Holds> {
        match repo.read_file(commit, HOLDS_FILE)? {
            None => Ok(Holds::default()),
            Some(bytes) => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| Error::input(format!("{HOLDS_FILE} on the main branch is not UTF-8 text")))?;
                Holds::parse(&text)
            }
        }
    }

    /// The file's text: deterministic, every string JSON-quoted (a valid YAML
    /// double-quoted scalar), so no reason can break the file.
    pub fn render(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
        let mut out = String::from(
            "# Holds recorded by gitops-flow `lock`; `unlock` removes them. While a hold is here,\n# stage, deploy and promote refuse to move what it names (rollback stays allowed).\n# A hold without `service` freezes every service of the environment.\n",
        );
        if self.holds.is_empty() {
            out.push_str("holds: []\n");
            return out;
        }
        out.push_str("holds:\n");
        for h in &self.holds {
            out.push_str(&format!("  - environment: {}\n", q(&h.environment)));
            if let Some(s) = &h.service {
                out.push_str(&format!("    service: {}\n", q(s)));
            }
            out.push_str(&format!("    by: {}\n", q(&h.by)));
            out.push_str(&format!("    at: {}\n", q(&h.at)));
            out.push_str(&format!("    reason: {}\n", q(&h.reason)));
        }
        out
    }

    /// The hold that stops `service` in `environment`: its own, else a freeze.
    pub fn blocking(&self, service: &str, environment: &str) -> Option<&Hold> {
        self.holds
            .iter()
            .find(|h| h.environment == environment && h.service.as_deref() == Some(service))
            .or_else(|| {
                self.holds
                    .iter()
                    .find(|h| h.environment == environment && h.service.is_none())
            })
    }

    /// The hold on exactly this key (`service: None` is the freeze).
    pub fn find(&self, environment: &str, service: Option<&str>) -> Option<&Hold> {
        self.holds
            .iter()
            .find(|h| h.environment == environment && h.service.as_deref() == service)
    }

    /// Adds `hold` unless its key is held already; true when added.
    pub fn add(&mut self, hold: Hold) -> bool {
        if self.find(&hold.environment, hold.service.as_deref()).is_some() {
            return false;
        }
        self.holds.push(hold);
        true
    }

    /// Removes the hold on exactly this key; the removed hold.
    pub fn remove(&mut self, environment: &str, service: Option<&str>) -> Option<Hold> {
        let i = self
            .holds
            .iter()
            .position(|h| h.environment == environment && h.service.as_deref() == service)?;
        Some(self.holds.remove(i))
    }
}

/// `reason` checked: one line of printable text, at most `MAX_REASON` characters.
pub fn check_reason(reason: &str) -> Result<()> {
    if reason.trim().is_empty() {
        return Err(Error::input(
            "`lock` needs a reason; pass input `reason` (why it is held, for whoever finds it held)",
        ));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(Error::input(format!(
            "input `reason` is longer than {MAX_REASON} characters; say it in one sentence and link to the incident"
        )));
    }
    if reason.chars().any(char::is_control) {
        return Err(Error::input(
            "input `reason` contains a line break or another control character; give it as one line",
        ));
    }
    Ok(())
}

/// Seconds since the epoch as UTC RFC 3339 (`2024-05-01T12:00:00Z`).
pub fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(env: &str, service: Option<&str>, reason: &str) -> Hold {
        Hold {
            environment: env.into(),
            service: service.map(String::from),
            by: "octocat".into(),
            at: "2024-05-01T12:00:00Z".into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn times_are_utc_rfc3339() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_714_564_800), "2024-05-01T12:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_709_251_199), "2024-02-29T23:59:59Z");
    }

    #[test]
    fn render_parses_back_whatever_the_reason_says() {
        let mut h = Holds::default();
        assert!(h.add(hold("production", Some("payments"), "bad: \"quotes\" # not a comment")));
        assert!(h.add(hold("staging", None, "freeze ✈️ 'x' {a: b} - [c]")));
        assert!(!h.add(hold("production", Some("payments"), "again")));
        let text = h.render();
        assert_eq!(Holds::parse(&text).unwrap(), h);
        expect_test::expect![[r#"
            # Holds recorded by gitops-flow `lock`; `unlock` removes them. While a hold is here,
            # stage, deploy and promote refuse to move what it names (rollback stays allowed).
            # A hold without `service` freezes every service of the environment.
            holds:
              - environment: "production"
                service: "payments"
                by: "octocat"
                at: "2024-05-01T12:00:00Z"
                reason: "bad: \"quotes\" # not a comment"
              - environment: "staging"
                by: "octocat"
                at: "2024-05-01T12:00:00Z"
                reason: "freeze ✈️ 'x' {a: b} - [c]"
        "#]]
        .assert_eq(&text);
        assert!(h.remove("staging", None).is_some());
        assert!(h.remove("staging", None).is_none());
        assert_eq!(Holds::parse(&Holds::default().render()).unwrap(), Holds::default());
    }

    #[test]
    fn a_service_hold_or_a_freeze_blocks() {
        let mut h = Holds::default();
        h.add(hold("production", Some("payments"), "x"));
        assert!(h.blocking("payments", "production").is_some());
        assert!(h.blocking("orders", "production").is_none());
        assert!(h.blocking("payments", "staging").is_none());
        h.add(hold("production", None, "freeze"));
        assert_eq!(h.blocking("orders", "production").unwrap().reason, "freeze");
        assert_eq!(h.blocking("payments", "production").unwrap().reason, "x");
    }

    #[test]
    fn a_broken_file_is_an_error_naming_it() {
        let e = Holds::parse("holds:\n  - environment: production\n    who: me\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with(".gitops-flow/holds.yaml on the main branch is not a valid holds file"),
            "{e}"
        );
        assert_eq!(e.place().unwrap().file, HOLDS_FILE);
    }

    #[test]
    fn reasons_are_one_line() {
        assert!(check_reason("incident 42").is_ok());
        assert!(check_reason(" ").is_err());
        assert!(check_reason("a\nb").is_err());
        assert!(check_reason(&"x".repeat(MAX_REASON + 1)).is_err());
    }
}
