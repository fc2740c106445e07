//! The retry policy: one pure decision — retry? after how long? give up saying
//! what? — from what one attempt got back. No clock, no I/O: the caller passes
//! the time elapsed, the budget and the wall-clock second, so every rule is a
//! unit test below.

use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};

/// Bounds of the retries.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub attempts: u32,
    /// First backoff after a 5xx or a lost connection; doubles each attempt.
    pub base: Duration,
    /// Time a call may take in all, waits included, unless the caller gives less.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base: Duration::from_millis(250),
            budget: Duration::from_secs(120),
        }
    }
}

/// What one attempt got back.
#[derive(Debug, Clone, Copy)]
pub enum Answer<'a> {
    /// The server answered.
    Response {
        status: StatusCode,
        headers: &'a HeaderMap,
        body: &'a str,
    },
    /// No answer: the connection failed, broke or timed out.
    NoAnswer(&'a str),
}

/// Everything the decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub method: &'a Method,
    /// False for a request that must not simply be sent again after an unknown
    /// outcome (it may have landed: `POST /deployments`).
    pub repeatable: bool,
    pub answer: Answer<'a>,
    /// 0 for the first attempt.
    pub attempt: u32,
    pub elapsed: Duration,
    pub budget: Duration,
    /// Seconds since the epoch (for `x-ratelimit-reset`).
    pub now: u64,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Hand the answer to the caller (success, or an error it interprets).
    Done,
    /// Send the same request again after this wait.
    Retry(Duration),
    /// The outcome is unknown and the request is not repeatable: the caller must
    /// look whether it landed before sending it again.
    Unknown(String),
    /// Stop; the message says what happened and what to do.
    GiveUp(GiveUp),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiveUp {
    /// The primary rate limit is used up until the given second.
    RateLimit { reset: u64 },
    /// A secondary rate limit asked for a wait longer than the time left.
    TooLongWait { wait: Duration, left: Duration, until: u64 },
    /// Transient failures kept coming.
    Exhausted { attempts: u32, what: String },
    /// No answer, and no time left for another attempt.
    OutOfTime { attempts: u32, what: String },
}

impl GiveUp {
    /// The message, after `{method} {path} `.
    pub fn message(&self) -> String {
        match self {
            GiveUp::RateLimit { reset } => format!(
                "hit GitHub's API rate limit: this token's requests are used up (x-ratelimit-remaining: 0) until {}; re-run the job after that, or use a token with a higher limit (a GitHub App token)",
                utc(*reset)
            ),
            GiveUp::TooLongWait { wait, left, until } => format!(
                "hit GitHub's secondary rate limit, which asks to wait {}s, more than the {}s left; re-run the job after {}",
                wait.as_secs(),
                left.as_secs(),
                utc(*until)
            ),
            GiveUp::Exhausted { attempts, what } => format!(
                "failed after {attempts} attempts: {what}; GitHub may be degraded, re-run the job to finish (every step is safe to repeat)"
            ),
            GiveUp::OutOfTime { attempts, what } => format!(
                "failed after {attempts} attempts: {what}; no time was left to try again, re-run the job to finish (every step is safe to repeat)"
            ),
        }
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

impl RetryPolicy {
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.base.saturating_mul(2u32.saturating_pow(attempt))
    }

    /// The decision for one attempt. Pure: the same inputs, the same decision.
    pub fn decide(&self, a: &Attempt<'_>) -> Decision {
        let left = a.budget.saturating_sub(a.elapsed);
        let more = a.attempt.saturating_add(1) < self.attempts;
        let fits = |wait: Duration| more && wait <= left;
        let (status, headers, body) = match a.answer {
            Answer::NoAnswer(e) => {
                if !a.repeatable {
                    return Decision::Unknown(format!("no answer ({e})"));
                }
                let wait = self.backoff(a.attempt);
                if fits(wait) {
                    return Decision::Retry(wait);
                }
                let what = e.to_string();
                return Decision::GiveUp(if more {
                    GiveUp::OutOfTime {
                        attempts: a.attempt.saturating_add(1),
                        what,
                    }
                } else {
                    GiveUp::Exhausted {
                        attempts: a.attempt.saturating_add(1),
                        what,
                    }
                });
            }
            Answer::Response { status, headers, body } => (status, headers, body),
        };
        // A success is a success, whatever else it carries (a stray Retry-After).
        if !status.is_client_error() && !status.is_server_error() {
            return Decision::Done;
        }
        let retry_after = header(headers, "retry-after").and_then(|s| s.parse::<u64>().ok());
        let limited_status = status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS;
        let primary = limited_status && header(headers, "x-ratelimit-remaining") == Some("0");
        let secondary = !primary
            && (status == StatusCode::TOO_MANY_REQUESTS
                || (status == StatusCode::FORBIDDEN
                    && (retry_after.is_some() || body.to_lowercase().contains("secondary rate limit"))));
        if primary {
            let reset = header(headers, "x-ratelimit-reset").and_then(|s| s.parse::<u64>().ok());
            let wait = match (retry_after, reset) {
                (Some(s), _) => Duration::from_secs(s),
                (None, Some(r)) => Duration::from_secs(r.saturating_sub(a.now).max(1)),
                (None, None) => Duration::from_secs(60),
            };
            if fits(wait) {
                return Decision::Retry(wait);
            }
            return Decision::GiveUp(GiveUp::RateLimit {
                reset: a.now.saturating_add(wait.as_secs()),
            });
        }
        if secondary {
            let wait = match retry_after {
                Some(s) => Duration::from_secs(s),
                None => self.backoff(a.attempt).max(Duration::from_secs(1)),
            };
            if fits(wait) {
                return Decision::Retry(wait);
            }
            return Decision::GiveUp(GiveUp::TooLongWait {
                wait,
                left,
                until: a.now.saturating_add(wait.as_secs()),
            });
        }
        if status.is_server_error() {
            let what = format!("HTTP {} {}", status.as_u16(), message_of(body));
            if !a.repeatable {
                return Decision::Unknown(what);
            }
            let wait = self.backoff(a.attempt);
            if fits(wait) {
                return Decision::Retry(wait);
            }
            return Decision::GiveUp(GiveUp::Exhausted {
                attempts: a.attempt.saturating_add(1),
                what,
            });
        }
        Decision::Done
    }
}

/// `message` of a JSON error body, else the body's first line (bounded).
pub fn message_of(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body)
        && let Some(m) = v.get("message").and_then(|m| m.as_str())
    {
        return m.to_string();
    }
    let line = body.lines().next().unwrap_or_default();
    if line.is_empty() {
        return "no message".into();
    }
    line.chars().take(200).collect()
}

/// `2024-01-31 12:00:00 UTC` for seconds since the epoch.
pub fn utc(secs: u64) -> String {
    // Beyond the year 9999 a calendar date helps nobody.
    if secs > 253_402_300_799 {
        return format!("second {secs} after 1970 (a bogus reset time)");
    }
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000; // 2023-11-14 22:13:20 UTC

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            attempts: 6,
            base: Duration::from_millis(250),
            budget: Duration::from_secs(120),
        }
    }

    fn decide(status: u16, h: &[(&'static str, &str)], body: &str, attempt: u32, elapsed: u64) -> Decision {
        let headers = headers(h);
        policy().decide(&Attempt {
            method: &Method::GET,
            repeatable: true,
            answer: Answer::Response {
                status: StatusCode::from_u16(status).unwrap(),
                headers: &headers,
                body,
            },
            attempt,
            elapsed: Duration::from_secs(elapsed),
            budget: Duration::from_secs(120),
            now: NOW,
        })
    }

    #[test]
    fn successes_are_done_even_with_retry_after() {
        assert_eq!(decide(200, &[], "{}", 0, 0), Decision::Done);
        assert_eq!(decide(201, &[("retry-after", "5")], "{}", 0, 0), Decision::Done);
        assert_eq!(
            decide(204, &[("retry-after", "18446744073709551615")], "", 0, 0),
            Decision::Done
        );
    }

    #[test]
    fn client_errors_are_done() {
        for s in [400, 401, 404, 409, 422] {
            assert_eq!(decide(s, &[], r#"{"message":"x"}"#, 0, 0), Decision::Done, "{s}");
        }
        // A plain 403 (a missing permission) is not a rate limit.
        assert_eq!(
            decide(
                403,
                &[("x-ratelimit-remaining", "4999")],
                r#"{"message":"Resource not accessible by integration"}"#,
                0,
                0
            ),
            Decision::Done
        );
    }

    #[test]
    fn server_errors_back_off_then_give_up() {
        assert_eq!(decide(502, &[], "", 0, 0), Decision::Retry(Duration::from_millis(250)));
        assert_eq!(decide(500, &[], "", 2, 1), Decision::Retry(Duration::from_secs(1)));
        assert_eq!(
            decide(502, &[], r#"{"message":"Server Error"}"#, 5, 10),
            Decision::GiveUp(GiveUp::Exhausted {
                attempts: 6,
                what: "HTTP 502 Server Error".into()
            })
        );
        assert_eq!(
            GiveUp::Exhausted {
                attempts: 6,
                what: "HTTP 502 Server Error".into()
            }
            .message(),
            "failed after 6 attempts: HTTP 502 Server Error; GitHub may be degraded, re-run the job to finish (every step is safe to repeat)"
        );
        // Out of budget before out of attempts.
        assert_eq!(
            decide(503, &[], "", 1, 120),
            Decision::GiveUp(GiveUp::Exhausted {
                attempts: 2,
                what: "HTTP 503 no message".into()
            })
        );
    }

    #[test]
    fn secondary_limits_wait_as_long_as_asked_when_the_budget_allows() {
        let body = r#"{"message":"You have exceeded a secondary rate limit."}"#;
        // GitHub asks for 60 s: more than 30, within the budget: wait.
        assert_eq!(
            decide(
                403,
                &[("retry-after", "60"), ("x-ratelimit-remaining", "4999")],
                body,
                0,
                10
            ),
            Decision::Retry(Duration::from_secs(60))
        );
        assert_eq!(
            decide(429, &[("retry-after", "1")], "", 0, 0),
            Decision::Retry(Duration::from_secs(1))
        );
        // Without retry-after: backoff, at least a second.
        assert_eq!(decide(403, &[], body, 0, 0), Decision::Retry(Duration::from_secs(1)));
        // Not within the time left: give up saying when to retry.
        let d = decide(403, &[("retry-after", "60")], body, 0, 100);
        let want = GiveUp::TooLongWait {
            wait: Duration::from_secs(60),
            left: Duration::from_secs(20),
            until: NOW + 60,
        };
        assert_eq!(d, Decision::GiveUp(want.clone()));
        assert_eq!(
            want.message(),
            "hit GitHub's secondary rate limit, which asks to wait 60s, more than the 20s left; re-run the job after 2023-11-14 22:14:20 UTC"
        );
    }

    #[test]
    fn huge_waits_never_overflow() {
        let d = decide(429, &[("retry-after", "18446744073709551615")], "", 0, 0);
        assert_eq!(
            d,
            Decision::GiveUp(GiveUp::TooLongWait {
                wait: Duration::from_secs(u64::MAX),
                left: Duration::from_secs(120),
                until: u64::MAX,
            })
        );
        let d = decide(
            403,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "18446744073709551615"),
            ],
            "",
            0,
            0,
        );
        assert_eq!(d, Decision::GiveUp(GiveUp::RateLimit { reset: u64::MAX }));
        assert_eq!(
            GiveUp::RateLimit { reset: u64::MAX }.message(),
            "hit GitHub's API rate limit: this token's requests are used up (x-ratelimit-remaining: 0) until second 18446744073709551615 after 1970 (a bogus reset time); re-run the job after that, or use a token with a higher limit (a GitHub App token)"
        );
        // Huge elapsed time and attempt counts saturate too.
        assert!(matches!(
            decide(502, &[], "", u32::MAX - 1, u64::MAX),
            Decision::GiveUp(_)
        ));
    }

    #[test]
    fn an_exhausted_primary_limit_says_so_and_until_when() {
        let h = [("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1700003600")];
        let body = r#"{"message":"API rate limit exceeded for installation ID 1."}"#;
        for status in [403, 429] {
            let d = decide(status, &h, body, 0, 0);
            assert_eq!(
                d,
                Decision::GiveUp(GiveUp::RateLimit { reset: 1_700_003_600 }),
                "{status}"
            );
        }
        assert_eq!(
            GiveUp::RateLimit { reset: 1_700_003_600 }.message(),
            "hit GitHub's API rate limit: this token's requests are used up (x-ratelimit-remaining: 0) until 2023-11-14 23:13:20 UTC; re-run the job after that, or use a token with a higher limit (a GitHub App token)"
        );
        // A reset a few seconds away is waited for.
        let h = [("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1700000005")];
        assert_eq!(decide(403, &h, body, 0, 0), Decision::Retry(Duration::from_secs(5)));
    }

    #[test]
    fn unrepeatable_requests_report_an_unknown_outcome() {
        let h = HeaderMap::new();
        let base = Attempt {
            method: &Method::POST,
            repeatable: false,
            answer: Answer::Response {
                status: StatusCode::BAD_GATEWAY,
                headers: &h,
                body: "",
            },
            attempt: 0,
            elapsed: Duration::ZERO,
            budget: Duration::from_secs(120),
            now: NOW,
        };
        assert_eq!(policy().decide(&base), Decision::Unknown("HTTP 502 no message".into()));
        let lost = Attempt {
            answer: Answer::NoAnswer("connection reset"),
            ..base
        };
        assert_eq!(
            policy().decide(&lost),
            Decision::Unknown("no answer (connection reset)".into())
        );
        // A rate limit was not processed: it is retried like any request.
        let h = headers(&[("retry-after", "1")]);
        let limited = Attempt {
            answer: Answer::Response {
                status: StatusCode::TOO_MANY_REQUESTS,
                headers: &h,
                body: "",
            },
            ..base
        };
        assert_eq!(policy().decide(&limited), Decision::Retry(Duration::from_secs(1)));
    }

    #[test]
    fn lost_connections_are_retried_within_the_budget() {
        let a = Attempt {
            method: &Method::GET,
            repeatable: true,
            answer: Answer::NoAnswer("connection refused"),
            attempt: 0,
            elapsed: Duration::ZERO,
            budget: Duration::from_secs(3),
            now: NOW,
        };
        assert_eq!(policy().decide(&a), Decision::Retry(Duration::from_millis(250)));
        let late = Attempt {
            elapsed: Duration::from_secs(3),
            ..a
        };
        assert_eq!(
            policy().decide(&late),
            Decision::GiveUp(GiveUp::OutOfTime {
                attempts: 1,
                what: "connection refused".into()
            })
        );
    }

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(NOW), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
