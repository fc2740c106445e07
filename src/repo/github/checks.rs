//! Statuses and check runs through GraphQL: `Commit.statusCheckRollup` gives the
//! latest status of each context and the check runs of a commit, 100 a page, so one
//! look of the commit-status gate reads our commit's and the main head's (with
//! whether the head contains ours) in one query instead of two REST listings each.

use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};

use super::{GitHubRepo, answers, client};
use crate::error::{Error, Result};
use crate::repo::{Check, CheckState, CommitChecks, Oid};

/// The selection of a commit's statuses and check runs (first page).
pub(super) const ROLLUP: &str = "statusCheckRollup { contexts(first: 100) { pageInfo { hasNextPage endCursor } nodes { __typename ... on StatusContext { context state } ... on CheckRun { name status conclusion databaseId } } } }";

/// `Commit.statusCheckRollup` as [`ROLLUP`] selects it.
#[derive(serde::Deserialize)]
struct Rollup {
    contexts: Contexts,
}

#[derive(serde::Deserialize)]
struct Contexts {
    #[serde(rename = "pageInfo")]
    page_info: PageInfo,
    nodes: Vec<Option<Context>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(tag = "__typename")]
enum Context {
    StatusContext {
        context: String,
        state: String,
    },
    CheckRun {
        name: String,
        status: String,
        conclusion: Option<String>,
        /// Newer runs have larger ids: a re-run stays listed beside the run it redid.
        #[serde(rename = "databaseId")]
        database_id: Option<i64>,
    },
}

impl Context {
    /// As the REST listings were read: a status `success` passes, `failure` and
    /// `error` fail, anything else is pending; a check run passes when completed
    /// with `success`, `neutral` or `skipped`, fails when completed otherwise.
    fn check(self) -> Check {
        match self {
            Context::StatusContext { context, state } => Check {
                name: context,
                state: match state.as_str() {
                    "SUCCESS" => CheckState::Success,
                    "FAILURE" | "ERROR" => CheckState::Failure,
                    _ => CheckState::Pending,
                },
            },
            Context::CheckRun {
                name,
                status,
                conclusion,
                ..
            } => Check {
                name,
                state: match (status.as_str(), conclusion.as_deref()) {
                    ("COMPLETED", Some("SUCCESS" | "NEUTRAL" | "SKIPPED")) => CheckState::Success,
                    ("COMPLETED", _) => CheckState::Failure,
                    _ => CheckState::Pending,
                },
            },
        }
    }
}

/// The checks of one page of a `statusCheckRollup` answer (`null`: none at all), and
/// the cursor of the next page when there is one.
pub(super) fn rollup_page(v: Value, request: &str, at: &str) -> Result<(Vec<Check>, Option<String>)> {
    if v.is_null() {
        return Ok((Vec::new(), None));
    }
    let r: Rollup = answers::answer(v, request, at)?;
    let checks = latest_runs(r.contexts.nodes.into_iter().flatten().collect())
        .into_iter()
        .map(Context::check)
        .collect();
    let next = if r.contexts.page_info.has_next_page {
        Some(r.contexts.page_info.end_cursor.ok_or_else(|| {
            Error::failed(format!(
                "GitHub's answer to {request} is not as documented: missing field `endCursor` at {at}.contexts.pageInfo"
            ))
        })?)
    } else {
        None
    };
    Ok((checks, next))
}

/// Only the newest check run of each name: `statusCheckRollup` keeps a run that was
/// re-run beside its re-run (an old failure must not fail the gate once the re-run
/// passed; the REST listing gitops-flow used before asked for `filter=latest`).
/// Statuses are the latest per context already. Within one page of 100.
fn latest_runs(nodes: Vec<Context>) -> Vec<Context> {
    let mut newest: std::collections::HashMap<String, Option<i64>> = std::collections::HashMap::new();
    for n in &nodes {
        if let Context::CheckRun { name, database_id, .. } = n {
            let e = newest.entry(name.clone()).or_insert(*database_id);
            *e = (*e).max(*database_id);
        }
    }
    let mut kept = std::collections::HashSet::new();
    nodes
        .into_iter()
        .filter(|n| match n {
            Context::CheckRun { name, database_id, .. } => {
                newest.get(name) == Some(database_id) && kept.insert(name.clone())
            }
            Context::StatusContext { .. } => true,
        })
        .collect()
}

const REQUEST: &str = "the GraphQL checks query";

impl GitHubRepo {
    /// The look of the commit-status gate read along with the history (see
    /// `ReadPlan::checks`), once: the next look asks GitHub.
    fn prefetched_checks(&self, sha: &Oid, main_ref: &str) -> Option<CommitChecks> {
        let known = std::mem::take(&mut *self.checks.borrow_mut());
        let checks = known.get(sha)?.clone();
        let head = self.refs.borrow().get(main_ref).cloned().flatten()?.commit;
        if head == *sha {
            return Some(CommitChecks { checks, head: None });
        }
        let contains = *self.ancestry.borrow().get(&(sha.clone(), head.clone()))?;
        let head = match contains {
            true => Some((head.clone(), known.get(&head)?.clone())),
            false => None,
        };
        Some(CommitChecks { checks, head })
    }

    /// [`ForgeApi::commit_checks`](crate::repo::ForgeApi::commit_checks): one GraphQL
    /// query (more only past 100 statuses and check runs on a commit).
    pub(super) fn gql_commit_checks(&self, sha: &Oid, main_ref: &str, within: Duration) -> Result<CommitChecks> {
        if let Some(look) = self.prefetched_checks(sha, main_ref) {
            return Ok(look);
        }
        let deadline = Instant::now() + within;
        let query = format!(
            "query($owner: String!, $name: String!, $sha: GitObjectID!, $main: String!, $head: String!) {{ repository(owner: $owner, name: $name) {{ at: object(oid: $sha) {{ ... on Commit {{ {ROLLUP} }} }} main: ref(qualifiedName: $main) {{ target {{ oid ... on Commit {{ {ROLLUP} }} }} c: compare(headRef: $head) {{ status }} }} }} }}"
        );
        let vars = json!({"owner": self.owner, "name": self.name, "sha": sha, "main": main_ref, "head": sha});
        // A comparison GitHub cannot make comes back null: ancestry is asked through REST.
        let data = self.api.graphql_within(&query, vars, &|seg| seg == "c", within)?;
        let mut repo: serde_json::Map<String, Value> =
            answers::answer::<answers::RepositoryData<_>>(data, REQUEST, "")?
                .repository
                .ok_or_else(|| self.not_found())?;
        let at: Option<serde_json::Map<String, Value>> = answers::take(&mut repo, "at", REQUEST, "repository")?;
        let checks = match at {
            Some(mut at) => {
                let rollup: Value = answers::take(&mut at, "statusCheckRollup", REQUEST, "repository.at")?;
                self.all_checks(sha, rollup, "repository.at.statusCheckRollup", deadline)?
            }
            // Not a commit GitHub knows (yet): nothing reported on it.
            None => Vec::new(),
        };
        let main: Option<answers::GqlRef> = answers::take(&mut repo, "main", REQUEST, "repository")?;
        let Some(mut main) = main else {
            return Ok(CommitChecks { checks, head: None });
        };
        let Some(mut target) = main.target.take() else {
            return Ok(CommitChecks { checks, head: None });
        };
        let head = target.oid.clone();
        if head == *sha {
            return Ok(CommitChecks { checks, head: None });
        }
        let cmp: Option<answers::Comparison> = answers::take(&mut main.rest, "c", REQUEST, "repository.main")?;
        let contains = match cmp {
            // base = main, head = our commit: BEHIND or IDENTICAL means main contains it.
            Some(c) => matches!(c.status.as_str(), "BEHIND" | "IDENTICAL"),
            None => self.contains_within(&head, sha, deadline)?,
        };
        self.ancestry.borrow_mut().insert((sha.clone(), head.clone()), contains);
        if !contains {
            return Ok(CommitChecks { checks, head: None });
        }
        let rollup: Value = answers::take(
            &mut target.files,
            "statusCheckRollup",
            REQUEST,
            "repository.main.target",
        )?;
        let head_checks = self.all_checks(&head, rollup, "repository.main.target.statusCheckRollup", deadline)?;
        Ok(CommitChecks {
            checks,
            head: Some((head, head_checks)),
        })
    }

    /// The checks of a first rollup page and of the pages after it (at most 10 in all).
    fn all_checks(&self, sha: &Oid, first: Value, at: &str, deadline: Instant) -> Result<Vec<Check>> {
        let (mut out, mut next) = rollup_page(first, REQUEST, at)?;
        let query = format!(
            "query($owner: String!, $name: String!, $sha: GitObjectID!, $after: String) {{ repository(owner: $owner, name: $name) {{ object(oid: $sha) {{ ... on Commit {{ {} }} }} }} }}",
            ROLLUP.replace("contexts(first: 100)", "contexts(first: 100, after: $after)")
        );
        for _ in 1..10 {
            let Some(after) = next.take() else { break };
            let vars = json!({"owner": self.owner, "name": self.name, "sha": sha, "after": after});
            let left = deadline.saturating_duration_since(Instant::now());
            let data = self.api.graphql_within(&query, vars, &|_| false, left)?;
            let rollup = data
                .pointer("/repository/object/statusCheckRollup")
                .cloned()
                .unwrap_or(Value::Null);
            let (more, n) = rollup_page(rollup, REQUEST, "repository.object.statusCheckRollup")?;
            out.extend(more);
            next = n;
        }
        // A verdict on part of the checks could pass a failure on a later page.
        if next.is_some() {
            return Err(Error::failed(format!(
                "{sha} has more than 1,000 statuses and check runs; the commit-status gate reads at most 1,000 and gives no verdict on part of them; use the Argo CD gate (`argocd-server`) for this environment"
            )));
        }
        Ok(out)
    }

    /// Whether `descendant` contains `ancestor`, through the REST compare API, within
    /// the time left until `deadline`.
    fn contains_within(&self, descendant: &Oid, ancestor: &Oid, deadline: Instant) -> Result<bool> {
        let path = format!("{}/compare/{ancestor}...{descendant}?per_page=1", self.repo_path());
        let left = deadline.saturating_duration_since(Instant::now());
        let r = self.api.rest_within(Method::GET, &path, None, left)?;
        match r.status.as_u16() {
            200 => {
                let c: answers::RestComparison = answers::answer(r.body, "GET compare/{basehead}", "")?;
                Ok(matches!(c.status.as_str(), "ahead" | "identical"))
            }
            404 => Ok(false),
            _ => Err(client::api_error(&Method::GET, "compare", &r)),
        }
    }
}
