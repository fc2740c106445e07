//! The GitHub forge: pull requests, labels, auto-merge, the merged pull request of a
//! commit, commit statuses and check runs (GraphQL, see `checks`), deployments
//! (REST, and GraphQL for auto-merge).

use http::Method;
use serde_json::{Value, json};

use super::client::{self, Sent};
use super::{GitHubRepo, enc, typed};
use crate::error::{Error, Result};
use crate::repo::{
    CommitChecks, DeploymentInfo, DeploymentSpec, DeploymentStatusSpec, Forge, ForgeApi, Oid, Proposal,
    PullRequestInfo, PullRequestSpec, PullRequestState, Write,
};

#[derive(serde::Deserialize)]
struct ApiPull {
    number: u64,
    state: String,
    head: ApiPullHead,
    labels: Vec<ApiLabel>,
}

/// A pull request as the REST API returns it: the fields gitops-flow relies on are
/// required, so a missing `number` is an error naming it, never `PATCH /pulls/0`.
#[derive(serde::Deserialize, Clone)]
struct ApiPr {
    number: u64,
    html_url: String,
    node_id: String,
    title: String,
    body: Option<String>,
    #[serde(default)]
    labels: Vec<ApiLabel>,
    auto_merge: Option<Value>,
}

#[derive(serde::Deserialize)]
struct ApiPullHead {
    sha: String,
}

#[derive(serde::Deserialize, Clone)]
struct ApiLabel {
    name: String,
}

#[derive(serde::Deserialize)]
struct ApiDeployment {
    id: u64,
    sha: String,
}

#[derive(serde::Deserialize)]
struct ApiDeploymentStatus {
    state: String,
    #[serde(default)]
    description: Option<String>,
}

/// A deployment as `POST deployments` returns it.
#[derive(serde::Deserialize)]
struct ApiCreatedDeployment {
    id: u64,
}

/// A deployment in a listing, with what tells an earlier attempt's apart.
#[derive(serde::Deserialize)]
struct ApiListedDeployment {
    id: u64,
    description: Option<String>,
    #[serde(default)]
    payload: Value,
}

/// A pull request in `GET commits/{sha}/pulls`.
#[derive(serde::Deserialize)]
struct ApiCommitPull {
    number: u64,
    body: Option<String>,
    merge_commit_sha: Option<String>,
    merged_at: Option<String>,
}

impl GitHubRepo {
    /// A deployment of `d.sha` to `d.environment` with the same description and
    /// payload as `d`, newest first: one that an earlier attempt created.
    fn find_deployment(&self, d: &DeploymentSpec) -> Result<Option<u64>> {
        let list = self.api.rest_ok(
            Method::GET,
            &format!(
                "{}/deployments?sha={}&environment={}&per_page=100",
                self.repo_path(),
                enc(&d.sha),
                enc(&d.environment)
            ),
            None,
        )?;
        let list: Vec<ApiListedDeployment> = typed(list, "GET deployments")?;
        Ok(list
            .into_iter()
            .find(|x| x.payload == d.payload && x.description.as_deref() == Some(d.description.as_str()))
            .map(|x| x.id))
    }

    /// Turns on auto-merge with a merge method the repository allows. Where GitHub
    /// will not (auto-merge disabled, the pull request already mergeable), the pull
    /// request stays open and a notice says what to do.
    fn enable_auto_merge(&self, number: u64, node: &str) -> Result<()> {
        if self.merge.borrow().is_none() {
            self.repo_id.borrow_mut().take();
            self.fetch_refs(&[])?;
        }
        let settings = *self.merge.borrow();
        let Some(settings) = settings else {
            return Err(Error::failed("GitHub did not report the repository's merge settings"));
        };
        let notice = |why: &str| {
            self.notices
                .borrow_mut()
                .push(format!("auto-merge not enabled on pull request #{number}: {why}"));
            Ok(())
        };
        if !settings.auto_merge_allowed {
            return notice(
                "the repository does not allow auto-merge; merge the pull request yourself, or turn on \"Allow auto-merge\" in the repository settings",
            );
        }
        let Some(method) = settings.method() else {
            return notice("the repository allows no merge method; merge the pull request yourself");
        };
        let result = self.api.graphql(
            "mutation($input: EnablePullRequestAutoMergeInput!) { enablePullRequestAutoMerge(input: $input) { pullRequest { number } } }",
            json!({ "input": { "pullRequestId": node, "mergeMethod": method } }),
        );
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("clean status") => notice(
                "it can be merged right now (GitHub calls this \"clean status\" and enables auto-merge only on pull requests that wait for checks or reviews); merge it, or protect the branch with required checks",
            ),
            Err(e) if e.to_string().contains("Auto merge is not allowed") => notice(
                "the repository does not allow auto-merge; merge the pull request yourself, or turn on \"Allow auto-merge\" in the repository settings",
            ),
            Err(e) => Err(e),
        }
    }
}

impl Forge for GitHubRepo {
    fn propose(&self, spec: &PullRequestSpec) -> Result<Proposal> {
        let existing = if self.new_branches.borrow().contains(&spec.head) {
            None
        } else {
            let list = self.api.rest_ok(
                Method::GET,
                &format!(
                    "{}/pulls?state=open&head={}:{}&base={}",
                    self.repo_path(),
                    enc(&self.owner),
                    enc(&spec.head),
                    enc(&spec.base)
                ),
                None,
            )?;
            list.as_array().and_then(|a| a.first()).cloned()
        };
        let (pr, created): (ApiPr, bool) = match existing {
            Some(pr) => {
                let pr: ApiPr = typed(pr, "GET pulls")?;
                if pr.title == spec.title && pr.body.as_deref() == Some(spec.body.as_str()) {
                    (pr, false)
                } else {
                    let updated = self.api.rest_ok(
                        Method::PATCH,
                        &format!("{}/pulls/{}", self.repo_path(), pr.number),
                        Some(&json!({ "title": spec.title, "body": spec.body })),
                    )?;
                    let updated: ApiPr = typed(updated, "PATCH pulls/{number}")?;
                    self.journal.record(Write::PullRequest {
                        number: Some(updated.number),
                        url: Some(updated.html_url.clone()),
                    });
                    (updated, false)
                }
            }
            None => {
                let body = json!({ "title": spec.title, "head": spec.head, "base": spec.base, "body": spec.body, "maintainer_can_modify": true });
                let r = self
                    .api
                    .rest(Method::POST, &format!("{}/pulls", self.repo_path()), Some(&body))?;
                if r.status.is_success() {
                    (typed(r.body, "POST pulls")?, true)
                } else if r.status.as_u16() == 422 && r.text.contains("already exists") {
                    // A retried create whose first attempt landed.
                    let list = self.api.rest_ok(
                        Method::GET,
                        &format!(
                            "{}/pulls?state=open&head={}:{}",
                            self.repo_path(),
                            enc(&self.owner),
                            enc(&spec.head)
                        ),
                        None,
                    )?;
                    let found = list
                        .as_array()
                        .and_then(|a| a.first())
                        .cloned()
                        .ok_or_else(|| client::api_error(&Method::POST, "pulls", &r))?;
                    (typed(found, "GET pulls")?, true)
                } else {
                    return Err(client::api_error(&Method::POST, "pulls", &r));
                }
            }
        };
        let n = pr.number;
        if created {
            self.journal.record(Write::PullRequest {
                number: Some(n),
                url: Some(pr.html_url.clone()),
            });
        }
        let missing: Vec<&String> = spec
            .labels
            .iter()
            .filter(|l| !pr.labels.iter().any(|have| have.name == **l))
            .collect();
        if !missing.is_empty() {
            self.api.rest_ok(
                Method::POST,
                &format!("{}/issues/{n}/labels", self.repo_path()),
                Some(&json!({ "labels": missing })),
            )?;
        }
        if spec.auto_merge && pr.auto_merge.as_ref().is_none_or(|a| a.is_null()) {
            self.enable_auto_merge(n, &pr.node_id)?;
        }
        Ok(Proposal::Opened {
            number: n,
            url: pr.html_url,
            created,
        })
    }

    fn api(&self) -> Option<&dyn ForgeApi> {
        Some(self)
    }

    fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut *self.notices.borrow_mut())
    }
}

impl ForgeApi for GitHubRepo {
    fn merged_pull_request(&self, sha: &Oid) -> Result<Option<PullRequestInfo>> {
        // Read with the history that found the commit (see `history`).
        if let Some(known) = self.merged_prs.borrow().get(sha) {
            return Ok(known.clone());
        }
        let mut page = 1;
        loop {
            let r = self.api.rest(
                Method::GET,
                &format!("{}/commits/{sha}/pulls?per_page=100&page={page}", self.repo_path()),
                None,
            )?;
            if r.status.as_u16() == 404 || r.status.as_u16() == 422 {
                return Ok(None);
            }
            if !r.status.is_success() {
                return Err(client::api_error(&Method::GET, "commits/{sha}/pulls", &r));
            }
            let items: Vec<ApiCommitPull> = typed(r.body, "GET commits/{sha}/pulls")?;
            let pick = items
                .iter()
                .find(|p| p.merge_commit_sha.as_deref() == Some(sha.as_str()))
                .or_else(|| items.iter().find(|p| p.merged_at.is_some()));
            if let Some(p) = pick {
                return Ok(Some(PullRequestInfo {
                    number: p.number,
                    body: p.body.clone().unwrap_or_default(),
                }));
            }
            let has_next = r
                .headers
                .get("link")
                .and_then(|l| l.to_str().ok())
                .is_some_and(|l| l.contains("rel=\"next\""));
            if !has_next || items.is_empty() || page >= 10 {
                return Ok(None);
            }
            page += 1;
        }
    }

    fn commit_checks(&self, sha: &Oid, main_ref: &str, within: std::time::Duration) -> Result<CommitChecks> {
        self.gql_commit_checks(sha, main_ref, within)
    }

    fn create_deployment(&self, d: &DeploymentSpec) -> Result<u64> {
        let body = json!({
            "ref": d.sha,
            "environment": d.environment,
            "description": d.description,
            "payload": d.payload,
            "auto_merge": false,
            "required_contexts": [],
            "production_environment": d.production,
            "transient_environment": d.transient,
        });
        let path = format!("{}/deployments", self.repo_path());
        // Creating a deployment is not safe to repeat: after an unknown outcome,
        // look whether it landed before creating it again.
        const TRIES: u32 = 3;
        for attempt in 0..TRIES {
            match self.api.rest_unrepeatable(Method::POST, &path, Some(&body))? {
                Sent::Answer(r) if r.status.is_success() => {
                    let created: ApiCreatedDeployment = typed(r.body, "POST deployments")?;
                    self.journal.record(Write::Deployment { id: created.id });
                    return Ok(created.id);
                }
                Sent::Answer(r) => return Err(client::api_error(&Method::POST, "deployments", &r)),
                Sent::Unknown(what) => {
                    if let Some(id) = self.find_deployment(d)? {
                        self.journal.record(Write::Deployment { id });
                        return Ok(id);
                    }
                    if attempt + 1 == TRIES {
                        return Err(Error::failed(format!(
                            "POST deployments failed {TRIES} times ({what}) and GitHub lists no such deployment; re-run the job to record it"
                        )));
                    }
                    tracing::warn!("POST deployments: {what}; it did not land, creating it again");
                    std::thread::sleep(self.api.backoff(attempt));
                }
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    fn pull_request_state(&self, number: u64) -> Result<PullRequestState> {
        let v = self
            .api
            .rest_ok(Method::GET, &format!("{}/pulls/{number}", self.repo_path()), None)?;
        let p: ApiPull = typed(v, "GET pulls/{number}")?;
        Ok(PullRequestState {
            number: p.number,
            head_sha: p.head.sha,
            open: p.state == "open",
            labels: p.labels.into_iter().map(|l| l.name).collect(),
        })
    }

    fn list_deployments(&self, environment: &str) -> Result<Vec<DeploymentInfo>> {
        let mut out = Vec::new();
        for page in 1..=10 {
            let v = self.api.rest_ok(
                Method::GET,
                &format!(
                    "{}/deployments?environment={}&per_page=100&page={page}",
                    self.repo_path(),
                    enc(environment)
                ),
                None,
            )?;
            let items: Vec<ApiDeployment> = typed(v, "GET deployments")?;
            let last = items.len() < 100;
            for d in items {
                let v = self.api.rest_ok(
                    Method::GET,
                    &format!("{}/deployments/{}/statuses?per_page=1", self.repo_path(), d.id),
                    None,
                )?;
                let statuses: Vec<ApiDeploymentStatus> = typed(v, "GET deployments/{id}/statuses")?;
                out.push(DeploymentInfo {
                    id: d.id,
                    sha: d.sha,
                    state: statuses.into_iter().next().map(|s| s.state),
                });
            }
            if last {
                break;
            }
        }
        Ok(out)
    }

    fn set_deployment_status(&self, id: u64, st: &DeploymentStatusSpec<'_>) -> Result<()> {
        let description: String = st.description.chars().take(140).collect();
        let mut body = json!({ "state": st.state, "description": description, "auto_inactive": st.auto_inactive });
        if let Some(u) = st.environment_url {
            body["environment_url"] = json!(u);
        }
        if let Some(u) = st.log_url {
            body["log_url"] = json!(u);
        }
        let path = format!("{}/deployments/{id}/statuses", self.repo_path());
        // A status is a new object each time: after an unknown outcome, look whether
        // it landed (the newest status says so) before sending it again.
        const TRIES: u32 = 3;
        for attempt in 0..TRIES {
            match self.api.rest_unrepeatable(Method::POST, &path, Some(&body))? {
                Sent::Answer(r) if r.status.is_success() => return Ok(()),
                Sent::Answer(r) => return Err(client::api_error(&Method::POST, "deployments/{id}/statuses", &r)),
                Sent::Unknown(what) => {
                    let newest = self.api.rest_ok(Method::GET, &format!("{path}?per_page=1"), None)?;
                    let newest: Vec<ApiDeploymentStatus> = typed(newest, "GET deployments/{id}/statuses")?;
                    if newest
                        .first()
                        .is_some_and(|n| n.state == st.state && n.description.as_deref() == Some(description.as_str()))
                    {
                        return Ok(());
                    }
                    if attempt + 1 == TRIES {
                        return Err(Error::failed(format!(
                            "POST deployments/{id}/statuses failed {TRIES} times ({what}) and the deployment's newest status is not `{}`; re-run the job to record it",
                            st.state
                        )));
                    }
                    tracing::warn!("POST deployments/{id}/statuses: {what}; it did not land, sending it again");
                    std::thread::sleep(self.api.backoff(attempt));
                }
            }
        }
        unreachable!("the loop returns on its last attempt")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{ApiCommitPull, ApiCreatedDeployment};
    use crate::repo::github::checks::rollup_page;
    use crate::repo::github::typed;
    use crate::repo::{Check, CheckState};

    /// A forge answer without a field gitops-flow relies on is an error naming the
    /// field and the request, never a default (a pull request #0, a nameless check).
    #[test]
    fn a_missing_field_is_an_error_naming_it() {
        let page = |nodes: serde_json::Value| json!({"contexts": {"pageInfo": {"hasNextPage": false, "endCursor": null}, "nodes": nodes}});
        let e = rollup_page(
            page(json!([{"__typename": "StatusContext", "state": "SUCCESS"}])),
            "the GraphQL checks query",
            "repository.at.statusCheckRollup",
        )
        .expect_err("no context")
        .to_string();
        assert!(e.contains("`context`") && e.contains("the GraphQL checks query"), "{e}");
        let e = rollup_page(json!({"contexts": {"nodes": []}}), "q", "at")
            .expect_err("no pageInfo")
            .to_string();
        assert!(e.contains("`pageInfo`"), "{e}");
        let e = typed::<Vec<ApiCommitPull>>(json!([{"body": "x", "merged_at": null}]), "GET commits/{sha}/pulls")
            .err()
            .expect("no number")
            .to_string();
        assert!(e.contains("`number`"), "{e}");
        let e = typed::<ApiCreatedDeployment>(json!({"sha": "abc"}), "POST deployments")
            .err()
            .expect("no id")
            .to_string();
        assert!(e.contains("`id`"), "{e}");
        // Statuses and check runs read as the REST listings were; no rollup, no checks.
        let (checks, next) = rollup_page(
            page(json!([
                {"__typename": "StatusContext", "context": "flux", "state": "ERROR"},
                {"__typename": "StatusContext", "context": "p", "state": "EXPECTED"},
                {"__typename": "CheckRun", "name": "ci", "status": "COMPLETED", "conclusion": null},
                {"__typename": "CheckRun", "name": "lint", "status": "COMPLETED", "conclusion": "SKIPPED"},
                {"__typename": "CheckRun", "name": "e2e", "status": "IN_PROGRESS", "conclusion": null},
                null
            ])),
            "q",
            "at",
        )
        .expect("typed");
        let c = |name: &str, state| Check {
            name: name.into(),
            state,
        };
        assert_eq!(
            checks,
            [
                c("flux", CheckState::Failure),
                c("p", CheckState::Pending),
                c("ci", CheckState::Failure),
                c("lint", CheckState::Success),
                c("e2e", CheckState::Pending)
            ]
        );
        assert_eq!(next, None);
        assert!(rollup_page(json!(null), "q", "at").expect("null").0.is_empty());
    }

    /// A check run that was re-run stays in the rollup beside its re-run: only the
    /// newest run of a name counts, whichever order GitHub lists them in.
    #[test]
    fn a_re_run_check_counts_not_the_run_it_redid() {
        let page = |nodes: serde_json::Value| json!({"contexts": {"pageInfo": {"hasNextPage": false, "endCursor": null}, "nodes": nodes}});
        let run = |id: i64, conclusion: &str| json!({"__typename": "CheckRun", "name": "build", "status": "COMPLETED", "conclusion": conclusion, "databaseId": id});
        for nodes in [
            json!([run(7, "FAILURE"), run(9, "SUCCESS")]),
            json!([run(9, "SUCCESS"), run(7, "FAILURE")]),
        ] {
            let (checks, _) = rollup_page(page(nodes), "q", "at").expect("typed");
            assert_eq!(
                checks,
                [Check {
                    name: "build".into(),
                    state: CheckState::Success
                }]
            );
        }
        let (checks, _) = rollup_page(page(json!([run(9, "FAILURE"), run(7, "SUCCESS")])), "q", "at").expect("typed");
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].state, CheckState::Failure);
    }
}
