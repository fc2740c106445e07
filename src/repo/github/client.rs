//! The HTTP side of the GitHub backend: octocrab as transport, our own bounded
//! retries (5xx, secondary rate limits, timeouts), REST and GraphQL helpers.

use std::time::{Duration, Instant};

use http::StatusCode;
use octocrab::Octocrab;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// Bounds of the retry loop.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub max_wait: Duration,
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base: Duration::from_millis(250),
            max_wait: Duration::from_secs(30),
            budget: Duration::from_secs(120),
        }
    }
}

pub struct Api {
    octo: Octocrab,
    pub rest_base: String,
    pub graphql_url: String,
    policy: RetryPolicy,
    rt: tokio::runtime::Runtime,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Value,
    pub text: String,
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
        })
    }

    /// How long to wait before retrying this response, or None when it is final.
    fn retry_after(&self, r: &Response, attempt: u32) -> Option<Duration> {
        let header = |n: &str| r.headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        let backoff = self.policy.base * 2u32.saturating_pow(attempt);
        if let Some(s) = header("retry-after").and_then(|s| s.trim().parse::<u64>().ok()) {
            return Some(Duration::from_secs(s));
        }
        let limited = r.status == StatusCode::TOO_MANY_REQUESTS
            || (r.status == StatusCode::FORBIDDEN
                && (header("x-ratelimit-remaining").as_deref() == Some("0")
                    || r.text.to_lowercase().contains("secondary rate limit")));
        if limited {
            if let Some(reset) = header("x-ratelimit-reset").and_then(|s| s.parse::<u64>().ok()) {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                return Some(Duration::from_secs(reset.saturating_sub(now).max(1)));
            }
            return Some(backoff.max(Duration::from_secs(1)));
        }
        if r.status.is_server_error() {
            return Some(backoff);
        }
        None
    }

    /// Sends a request with bounded retries. Writes are retried too: every write
    /// gitops-flow makes is a compare-and-swap, and callers check whether a write
    /// that "failed" after a retry had in fact landed.
    pub async fn send(&self, method: http::Method, url: &str, body: Option<&Value>) -> Result<Response> {
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            let result = self.once(&method, url, body).await;
            let wait = match &result {
                Ok(r) => self.retry_after(r, attempt),
                Err(_) => Some(self.policy.base * 2u32.saturating_pow(attempt)),
            };
            let last = attempt + 1 >= self.policy.attempts;
            match (result, wait) {
                (Ok(r), None) => return Ok(r),
                (res, Some(w)) if !last && start.elapsed() + w <= self.policy.budget && w <= self.policy.max_wait => {
                    let what = match &res {
                        Ok(r) => format!("HTTP {}", r.status.as_u16()),
                        Err(e) => e.clone(),
                    };
                    tracing::warn!("{method} {} failed ({what}); retrying in {:?}", path_of(url), w);
                    tokio::time::sleep(w).await;
                    attempt += 1;
                }
                (Ok(r), Some(_)) => {
                    let msg = r
                        .body
                        .get("message")
                        .and_then(|m| m.as_str())
                        .unwrap_or("no message")
                        .to_string();
                    return Err(Error::failed(format!(
                        "{method} {} failed after {} attempts: HTTP {} {msg}; GitHub may be degraded, re-run the job to finish (every step is safe to repeat)",
                        path_of(url),
                        attempt + 1,
                        r.status.as_u16()
                    )));
                }
                (Err(e), _) => {
                    return Err(Error::failed(format!(
                        "{method} {} failed after {} attempts: {e}",
                        path_of(url),
                        attempt + 1
                    )));
                }
            }
        }
    }

    pub fn rest(&self, method: http::Method, path: &str, body: Option<&Value>) -> Result<Response> {
        let url = format!("{}{path}", self.rest_base);
        self.block_on(self.send(method, &url, body))
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
        let body = serde_json::json!({ "query": query, "variables": variables });
        let r = self.block_on(self.send(http::Method::POST, &self.graphql_url, Some(&body)))?;
        if !r.status.is_success() {
            return Err(api_error(&http::Method::POST, "graphql", &r));
        }
        if let Some(errors) = r
            .body
            .get("errors")
            .and_then(|e| e.as_array())
            .filter(|e| !e.is_empty())
        {
            let msgs: Vec<String> = errors
                .iter()
                .filter_map(|e| e.get("message").and_then(|m| m.as_str()).map(String::from))
                .collect();
            return Err(Error::Failed(format!("GraphQL: {}", msgs.join("; "))));
        }
        Ok(r.body.get("data").cloned().unwrap_or(Value::Null))
    }
}

fn path_of(url: &str) -> &str {
    url.find("://")
        .and_then(|i| url[i + 3..].find('/').map(|j| &url[i + 3 + j..]))
        .unwrap_or(url)
}

pub fn api_error(method: &http::Method, path: &str, r: &Response) -> Error {
    let msg = r
        .body
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or(r.text.as_str());
    let hint = match r.status.as_u16() {
        401 => "; the token is invalid or expired",
        403 => {
            "; the token lacks a permission: give the workflow `permissions: contents: write` (and `pull-requests: write`, `deployments: write`, `statuses: read` as the command needs)"
        }
        404 => "; the repository or object was not found, or the token cannot see it (`permissions: contents: read`)",
        422 => "; GitHub refused the request as invalid",
        _ => "",
    };
    Error::failed(format!(
        "GitHub API {method} {path} returned {}: {msg}{hint}",
        r.status.as_u16()
    ))
}
