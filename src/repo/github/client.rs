//! The HTTP side of the GitHub backend (and of the Argo CD gate): octocrab as
//! transport, every attempt bounded in time, retries decided by `retry::RetryPolicy`,
//! REST and GraphQL helpers.

use std::time::{Duration, Instant};

use http::StatusCode;
use octocrab::Octocrab;
use serde_json::Value;

use super::retry::{Answer, Attempt, Decision, RetryPolicy};
use crate::error::{ApiFailure, Error, Result};
use crate::secret::Secret;

pub struct Api {
    octo: Octocrab,
    pub rest_base: String,
    pub graphql_url: String,
    policy: RetryPolicy,
    rt: tokio::runtime::Runtime,
}

/// The result of a request whose outcome may be unknown.
pub enum Sent {
    Answer(Response),
    /// No usable answer (a 5xx, a lost connection): the request may have landed.
    Unknown(String),
}

pub struct Response {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Value,
    pub text: String,
    /// An earlier attempt of this request had an unknown outcome (a 5xx, no answer)
    /// before this answer: for a write, that attempt may have landed.
    pub after_unknown: bool,
}

fn origin(url: &str) -> Result<String> {
    let uri: http::Uri = url.parse().map_err(|_| {
        Error::input(format!(
            "`{url}` is not a valid URL (GITHUB_API_URL / GITHUB_GRAPHQL_URL)"
        ))
    })?;
    let (Some(scheme), Some(auth)) = (uri.scheme_str(), uri.authority()) else {
        return Err(Error::input(format!("`{url}` is not an absolute URL")));
    };
    Ok(format!("{scheme}://{auth}"))
}

/// How many independent read queries `graphql_reads` keeps in flight.
const READS_IN_FLIGHT: usize = 4;

impl Api {
    pub fn new(rest_base: &str, graphql_url: &str, token: &Secret, policy: RetryPolicy) -> Result<Api> {
        // The base URI carries no path: every request passes its full URL, so that
        // GitHub Enterprise's `/api/v3` and `/api/graphql` both come out right.
        let base = origin(rest_base)?;
        origin(graphql_url)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::failed(format!("cannot start the async runtime: {e}")))?;
        // The client's middleware needs the runtime while it is built.
        let _guard = rt.enter();
        let octo = Octocrab::builder()
            .base_uri(base.as_str())
            .map_err(|e| Error::input(format!("invalid API URL {base}: {e}")))?
            .personal_token(token.expose().to_string())
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(Duration::from_secs(30)))
            .set_write_timeout(Some(Duration::from_secs(30)))
            .build()
            .map_err(|e| Error::failed(format!("cannot build the GitHub client: {e}")))?;
        Ok(Api {
            octo,
            rest_base: rest_base.trim_end_matches('/').to_string(),
            graphql_url: graphql_url.to_string(),
            policy,
            rt,
        })
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    async fn once(
        &self,
        method: &http::Method,
        url: &str,
        body: Option<&Value>,
    ) -> std::result::Result<Response, String> {
        let resp = match *method {
            http::Method::GET => self.octo._get(url).await,
            http::Method::POST => self.octo._post(url, body).await,
            http::Method::PATCH => self.octo._patch(url, body).await,
            http::Method::PUT => self.octo._put(url, body).await,
            _ => return Err(format!("unsupported method {method}")),
        }
        .map_err(|e| format!("{e}"))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = self.octo.body_to_string(resp).await.map_err(|e| format!("{e}"))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Response {
            status,
            headers,
            body,
            text,
            after_unknown: false,
        })
    }

    /// Sends a request, retrying as the policy decides, within `budget` in all
    /// (each attempt is cut off when the budget runs out). Repeatable requests are
    /// retried after an unknown outcome (every write gitops-flow makes that way is a
    /// compare-and-swap, and callers check whether an earlier attempt landed); for
    /// the others an unknown outcome is returned as `Sent::Unknown`.
    pub async fn send(
        &self,
        method: http::Method,
        url: &str,
        body: Option<&Value>,
        repeatable: bool,
        budget: Duration,
    ) -> Result<Sent> {
        self.send_tracked(method, url, body, repeatable, budget)
            .await
            .map_err(|(e, _)| e)
    }

    /// [`Api::send`], with a failure's second half saying whether any attempt may
    /// have been processed: `false` only when every attempt was answered with a
    /// refusal GitHub did not act on (a 4xx, a rate limit), so that a write found in
    /// place afterwards is someone else's.
    async fn send_tracked(
        &self,
        method: http::Method,
        url: &str,
        body: Option<&Value>,
        repeatable: bool,
        budget: Duration,
    ) -> std::result::Result<Sent, (Error, bool)> {
        let start = Instant::now();
        let mut attempt = 0u32;
        let mut after_unknown = false;
        loop {
            let left = budget.saturating_sub(start.elapsed());
            let result = match tokio::time::timeout(left, self.once(&method, url, body)).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {}s", budget.as_secs_f32().ceil() as u64)),
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let answer = match &result {
                Ok(r) => Answer::Response {
                    status: r.status,
                    headers: &r.headers,
                    body: &r.text,
                },
                Err(e) => Answer::NoAnswer(e),
            };
            let decision = self.policy.decide(&Attempt {
                method: &method,
                repeatable,
                answer,
                attempt,
                elapsed: start.elapsed(),
                budget,
                now,
            });
            // No answer or a 5xx: this attempt may have been processed.
            let unknown = result.as_ref().map_or(true, |r| r.status.is_server_error());
            match (decision, result) {
                (Decision::Done, Ok(r)) => return Ok(Sent::Answer(Response { after_unknown, ..r })),
                (Decision::Retry(wait), res) => {
                    after_unknown |= unknown;
                    let what = match &res {
                        Ok(r) => format!("HTTP {}", r.status.as_u16()),
                        Err(e) => e.clone(),
                    };
                    tracing::warn!("{method} {} failed ({what}); retrying in {wait:?}", path_of(url));
                    tokio::time::sleep(wait).await;
                    attempt = attempt.saturating_add(1);
                }
                (Decision::Unknown(what), _) => return Ok(Sent::Unknown(what)),
                (Decision::GiveUp(g), _) => {
                    let e = Error::failed(format!("{method} {} {}", path_of(url), g.message()));
                    return Err((e, after_unknown || unknown));
                }
                (Decision::Done, Err(e)) => {
                    let e = Error::failed(format!("{method} {} failed: {e}", path_of(url)));
                    return Err((e, true));
                }
            }
        }
    }

    /// The wait before attempt `attempt + 1` of a request the caller repeats itself.
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.policy.backoff(attempt)
    }

    /// A repeatable request within the policy's budget.
    async fn send_repeatable(&self, method: http::Method, url: &str, body: Option<&Value>) -> Result<Response> {
        self.send_repeatable_tracked(method, url, body, self.policy.budget)
            .await
            .map_err(|(e, _)| e)
    }

    /// [`Api::send_repeatable`], saying with a failure whether an attempt may have
    /// landed (see [`Api::send_tracked`]).
    async fn send_repeatable_tracked(
        &self,
        method: http::Method,
        url: &str,
        body: Option<&Value>,
        budget: Duration,
    ) -> std::result::Result<Response, (Error, bool)> {
        match self.send_tracked(method, url, body, true, budget).await? {
            Sent::Answer(r) => Ok(r),
            Sent::Unknown(what) => Err((Error::failed(format!("{} failed: {what}", path_of(url))), true)),
        }
    }

    /// A REST call that may be repeated, finishing within `budget`.
    pub fn rest_within(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
        budget: Duration,
    ) -> Result<Response> {
        let url = format!("{}{path}", self.rest_base);
        self.block_on(self.send_repeatable_tracked(method, &url, body, budget))
            .map_err(|(e, _)| e)
    }

    /// A REST call that must not simply be sent again: one attempt (rate limits
    /// aside, which GitHub did not process); an unknown outcome is for the caller
    /// to look into.
    pub fn rest_unrepeatable(&self, method: http::Method, path: &str, body: Option<&Value>) -> Result<Sent> {
        let url = format!("{}{path}", self.rest_base);
        self.block_on(self.send(method, &url, body, false, self.policy.budget))
    }

    pub fn rest(&self, method: http::Method, path: &str, body: Option<&Value>) -> Result<Response> {
        let url = format!("{}{path}", self.rest_base);
        self.block_on(self.send_repeatable(method, &url, body))
    }

    /// A REST call that must succeed (2xx); errors name the call and, for 403/404,
    /// the token permission that is likely missing.
    pub fn rest_ok(&self, method: http::Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let r = self.rest(method.clone(), path, body)?;
        if r.status.is_success() {
            return Ok(r.body);
        }
        Err(api_error(&method, path, &r))
    }

    pub fn graphql(&self, query: &str, variables: Value) -> Result<Value> {
        self.graphql_tolerating(query, variables, &|_| false)
    }

    /// Like [`Api::graphql`], but errors on fields whose path has a segment that
    /// `optional` accepts are not failures: those fields come back null (GitHub answers
    /// `compare: null` with a `NOT_FOUND` error for a head it cannot resolve), and the
    /// caller falls back to another way of asking.
    pub fn graphql_tolerating(&self, query: &str, variables: Value, optional: &dyn Fn(&str) -> bool) -> Result<Value> {
        self.block_on(self.graphql_async(query, variables, optional))
    }

    /// [`Api::graphql_tolerating`] finishing within `budget` (retries included): a
    /// read that must not outlast the time its caller has left (a health gate).
    pub fn graphql_within(
        &self,
        query: &str,
        variables: Value,
        optional: &dyn Fn(&str) -> bool,
        budget: Duration,
    ) -> Result<Value> {
        self.block_on(self.graphql_answer(query, variables, optional, budget))
            .map_err(|(e, _)| e)
    }

    /// Read-only GraphQL queries that do not depend on each other, at most
    /// `READS_IN_FLIGHT` at a time (GitHub asks integrations not to send many requests
    /// at once; a few cut a batched read's wall time by as many round trips). The
    /// answers come back in the order of `queries`; the first error is returned.
    pub fn graphql_reads(&self, queries: Vec<(String, Value)>) -> Result<Vec<Value>> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let no = |_: &str| false;
        self.block_on(
            stream::iter(queries)
                .map(|(q, v)| async move { self.graphql_async(&q, v, &no).await })
                .buffered(READS_IN_FLIGHT)
                .try_collect(),
        )
    }

    /// A GraphQL mutation that is a compare-and-swap (safe to send again): its data,
    /// or its error and whether an earlier attempt may have landed — `false` when
    /// GitHub refused the very first attempt, so that what the caller finds in place
    /// afterwards was written by someone else.
    pub fn graphql_write(&self, query: &str, variables: Value) -> std::result::Result<Value, (Error, bool)> {
        self.block_on(self.graphql_answer(query, variables, &|_| false, self.policy.budget))
    }

    async fn graphql_async(&self, query: &str, variables: Value, optional: &dyn Fn(&str) -> bool) -> Result<Value> {
        self.graphql_answer(query, variables, optional, self.policy.budget)
            .await
            .map_err(|(e, _)| e)
    }

    async fn graphql_answer(
        &self,
        query: &str,
        variables: Value,
        optional: &dyn Fn(&str) -> bool,
        budget: Duration,
    ) -> std::result::Result<Value, (Error, bool)> {
        let body = serde_json::json!({ "query": query, "variables": variables });
        let r = self
            .send_repeatable_tracked(http::Method::POST, &self.graphql_url, Some(&body), budget)
            .await?;
        let maybe = r.after_unknown;
        if !r.status.is_success() {
            // A 4xx is a refusal of this attempt; a 5xx (or anything else) may not be.
            let landed = maybe || !r.status.is_client_error();
            return Err((api_error(&http::Method::POST, "graphql", &r), landed));
        }
        if let Some(errors) = r
            .body
            .get("errors")
            .and_then(|e| e.as_array())
            .filter(|e| !e.is_empty())
        {
            let fatal: Vec<Value> = errors
                .iter()
                .filter(|e| {
                    !e.get("path")
                        .and_then(|p| p.as_array())
                        .is_some_and(|p| p.iter().filter_map(|s| s.as_str()).any(optional))
                })
                .cloned()
                .collect();
            if !fatal.is_empty() || r.body.get("data").is_none_or(|d| d.is_null()) {
                return Err((graphql_error(errors), maybe));
            }
            tracing::debug!("GitHub GraphQL: optional fields failed and are read another way: {errors:?}");
        }
        // `data` is always there in an answer without errors, null or not: a missing
        // one (an answer that is not GraphQL's) is not taken for "nothing found".
        match r.body.get("data") {
            Some(d) => Ok(d.clone()),
            None => Err((
                Error::failed(format!(
                    "GitHub's answer to POST graphql is not as documented: missing field `data` ({})",
                    r.text.chars().take(200).collect::<String>()
                )),
                true,
            )),
        }
    }
}

fn path_of(url: &str) -> &str {
    url.find("://")
        .and_then(|i| url[i + 3..].find('/').map(|j| &url[i + 3 + j..]))
        .unwrap_or(url)
}

/// What a person can do about an error status, the same for REST and GraphQL.
fn hint(status: u16) -> &'static str {
    match status {
        401 => "; the token is invalid or expired",
        403 => {
            "; the token lacks a permission: give the workflow `permissions: contents: write` (and `pull-requests: write`, `deployments: write`, `statuses: read` as the command needs)"
        }
        404 => "; the repository or object was not found, or the token cannot see it (`permissions: contents: read`)",
        422 => "; GitHub refused the request as invalid",
        _ => "",
    }
}

pub fn api_error(method: &http::Method, path: &str, r: &Response) -> Error {
    let msg = r
        .body
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or(r.text.as_str());
    Error::Api(Box::new(ApiFailure {
        method: method.to_string(),
        path: path.to_string(),
        status: Some(r.status.as_u16()),
        error_type: None,
        message: msg.to_string(),
        hint: hint(r.status.as_u16()),
    }))
}

/// The `errors` of a GraphQL answer, with the permission hints of REST 403/404
/// for `FORBIDDEN` ("Resource not accessible by integration") and `NOT_FOUND`.
pub fn graphql_error(errors: &[Value]) -> Error {
    let msgs: Vec<&str> = errors
        .iter()
        .filter_map(|e| e.get("message").and_then(|m| m.as_str()))
        .collect();
    let type_of = |t: &str| {
        errors
            .iter()
            .find_map(|e| e.get("type").and_then(|v| v.as_str()).filter(|v| *v == t))
            .map(String::from)
    };
    // The hints of the REST statuses of the same meaning.
    let (error_type, like) = match (type_of("FORBIDDEN"), type_of("NOT_FOUND")) {
        (Some(t), _) => (Some(t), 403),
        (None, Some(t)) => (Some(t), 404),
        (None, None) => (
            errors
                .iter()
                .find_map(|e| e.get("type").and_then(|v| v.as_str()))
                .map(String::from),
            0,
        ),
    };
    Error::Api(Box::new(ApiFailure {
        method: "POST".into(),
        path: "graphql".into(),
        status: None,
        error_type,
        message: msgs.join("; "),
        hint: hint(like),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn graphql_errors_carry_the_rest_hints() {
        let e = graphql_error(&[
            json!({"type": "FORBIDDEN", "path": ["updateRefs"], "message": "Resource not accessible by integration"}),
        ]);
        assert_eq!(
            e.to_string(),
            "GitHub GraphQL API: Resource not accessible by integration; the token lacks a permission: give the workflow `permissions: contents: write` (and `pull-requests: write`, `deployments: write`, `statuses: read` as the command needs)"
        );
        assert_eq!(e.exit_code(), 1);
        let Error::Api(a) = &e else {
            panic!("not an API error: {e}")
        };
        assert_eq!(
            (a.path.as_str(), a.status, a.error_type.as_deref()),
            ("graphql", None, Some("FORBIDDEN"))
        );
        assert!(a.hint.contains("contents: write"), "{}", a.hint);
        let e = graphql_error(&[
            json!({"type": "NOT_FOUND", "message": "Could not resolve to a Repository with the name 'acme/nope'."}),
        ]);
        assert_eq!(
            e.to_string(),
            "GitHub GraphQL API: Could not resolve to a Repository with the name 'acme/nope'.; the repository or object was not found, or the token cannot see it (`permissions: contents: read`)"
        );
        let e = graphql_error(&[
            json!({"message": "a"}),
            json!({"type": "UNPROCESSABLE", "message": "b"}),
        ]);
        assert_eq!(e.to_string(), "GitHub GraphQL API: a; b");
    }
}
