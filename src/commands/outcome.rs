//! What a command did, rendered as the step outputs (the summary is its own field).

use serde::Serialize;

/// What a command did: becomes the step outputs, `result` and the job summary.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Outcome {
    pub changed: bool,
    pub service: Option<String>,
    pub environment: Option<String>,
    pub version: Option<String>,
    pub previous_version: Option<String>,
    pub revision: Option<String>,
    pub previous_revision: Option<String>,
    pub tag: Option<String>,
    pub rollback_revision: Option<String>,
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub pull_request_number: Option<u64>,
    pub pull_request_url: Option<String>,
    pub report: Option<serde_json::Value>,
    /// `preview`: the environment URL.
    pub url: Option<String>,
    /// `preview`: the GitHub deployment it recorded or acted on.
    pub deployment_id: Option<u64>,
    /// `preview`: the deployment state it set (`success`, `failure`, `error`, `inactive`).
    pub state: Option<String>,
    /// A hold (`lock`) stopped the move; `lock`/`unlock`: the target is held afterwards.
    pub held: bool,
    #[serde(skip)]
    pub summary: String,
    /// The environment runs a new revision without this run having moved it (the
    /// merge that `deploy` reports for a file-tracked environment): deployments and
    /// the gate apply as after a move.
    #[serde(skip)]
    pub deployed: bool,
    /// Set when the operation failed after doing work worth reporting (a failed
    /// gate, a rollback): outputs and summary are written, then exit 1.
    #[serde(skip)]
    pub failure: Option<String>,
}

impl Outcome {
    /// Marks the run failed after it did what the outcome says (exit 1).
    pub fn fail(&mut self, msg: &str) {
        self.summary.push_str(&format!("\n❌ {msg}\n"));
        self.failure = Some(match self.failure.take() {
            Some(f) => format!("{f}; then {msg}"),
            None => msg.to_string(),
        });
    }

    /// The step outputs, every name always present (empty when not applicable).
    pub fn output_pairs(&self) -> Vec<(String, String)> {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut pairs = vec![
            ("changed".to_string(), self.changed.to_string()),
            ("service".into(), s(&self.service)),
            ("environment".into(), s(&self.environment)),
            ("version".into(), s(&self.version)),
            ("previous-version".into(), s(&self.previous_version)),
            ("revision".into(), s(&self.revision)),
            ("previous-revision".into(), s(&self.previous_revision)),
            ("tag".into(), s(&self.tag)),
            ("rollback-revision".into(), s(&self.rollback_revision)),
            ("commit".into(), s(&self.commit)),
            ("branch".into(), s(&self.branch)),
            (
                "pull-request-number".into(),
                self.pull_request_number.map(|n| n.to_string()).unwrap_or_default(),
            ),
            ("pull-request-url".into(), s(&self.pull_request_url)),
            (
                "report".into(),
                self.report.as_ref().map(|r| r.to_string()).unwrap_or_default(),
            ),
            ("url".into(), s(&self.url)),
            (
                "deployment-id".into(),
                self.deployment_id.map(|n| n.to_string()).unwrap_or_default(),
            ),
            ("state".into(), s(&self.state)),
            ("held".into(), self.held.to_string()),
        ];
        pairs.push((
            "result".into(),
            serde_json::to_string(self).unwrap_or_else(|_| "{}".into()),
        ));
        pairs
    }
}
