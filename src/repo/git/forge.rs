//! What the `git` backend knows about forges without an API: GitLab's merge
//! request push options, the merge request GitLab reports back, and web links
//! formed from the remote's URL.

use super::GitRepo;
use crate::cli::Forge as ForgeKind;
use crate::error::Result;
use crate::repo::{Forge, ForgeApi, Proposal, PullRequestSpec, Write};

/// The forge of the `git` backend: a GitLab merge request opened by the push that
/// publishes its branch (push options), or — `forge: none` — the branch pushed and
/// the pull request to open reported. No forge API either way.
impl Forge for GitRepo {
    fn propose(&self, spec: &PullRequestSpec) -> Result<Proposal> {
        let head_ref = format!("refs/heads/{}", spec.head);
        let pending = {
            let mut p = self.pending.borrow_mut();
            if p.as_ref().is_some_and(|u| u.name == head_ref) {
                p.take()
            } else {
                None
            }
        };
        self.flush_pending()?;
        let compare = self
            .web
            .as_deref()
            .and_then(|w| compare_url(w, self.gitlab, &spec.base, &spec.head));
        match (self.forge, pending) {
            (ForgeKind::GitLab, Some(u)) => {
                let said = self.push(std::slice::from_ref(&u), &gitlab_push_options(spec))?;
                self.journal.record(Write::Commit {
                    branch: spec.head.clone(),
                    commit: u.new.clone(),
                });
                let mr = merge_request_in(&said);
                if mr.is_none() {
                    self.notices.borrow_mut().push(format!(
                        "pushed `{}` with merge request push options; the server did not name a merge request (is `{}` a GitLab server?)",
                        spec.head, self.url
                    ));
                }
                let (number, url) = mr.map_or((None, None), |(n, u)| (Some(n), Some(u)));
                self.journal.record(Write::PullRequest {
                    number,
                    url: url.clone(),
                });
                Ok(match (number, url) {
                    (Some(number), Some(url)) => Proposal::Opened {
                        number,
                        url,
                        created: false,
                    },
                    _ => Proposal::reported(spec),
                })
            }
            (ForgeKind::GitLab, None) => {
                self.notices.borrow_mut().push(format!(
                    "`{}` already holds this change, so there was nothing to push: its merge request into `{}` was opened by the push that put it there{}",
                    spec.head,
                    spec.base,
                    compare.map(|c| format!(" (if it was closed, open it again: {c})")).unwrap_or_default()
                ));
                Ok(Proposal::reported(spec))
            }
            (ForgeKind::None, pending) => {
                if let Some(u) = pending {
                    self.push(std::slice::from_ref(&u), &[])?;
                    self.journal.record(Write::Commit {
                        branch: spec.head.clone(),
                        commit: u.new,
                    });
                }
                self.notices.borrow_mut().push(format!(
                    "open the pull request `{}` → `{}` ({}){}",
                    spec.head,
                    spec.base,
                    spec.title,
                    compare
                        .map(|c| format!(": {c}"))
                        .unwrap_or_else(|| " on the git host (`forge: none`)".into())
                ));
                Ok(Proposal::reported(spec))
            }
        }
    }

    fn api(&self) -> Option<&dyn ForgeApi> {
        None
    }

    fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut *self.notices.borrow_mut())
    }
}

/// GitLab push options that open (or update) the merge request of `spec.head`.
/// A push option is one line: the description's line breaks become spaces (the
/// gitops-flow metadata comment is on one line and survives).
pub fn gitlab_push_options(spec: &PullRequestSpec) -> Vec<String> {
    let one_line = |s: &str| {
        s.split(['\n', '\r'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = vec![
        "merge_request.create".to_string(),
        format!("merge_request.target={}", spec.base),
        format!("merge_request.title={}", one_line(&spec.title)),
        format!("merge_request.description={}", one_line(&spec.body)),
    ];
    for l in &spec.labels {
        out.push(format!("merge_request.label={}", one_line(l)));
    }
    out.push("merge_request.remove_source_branch".into());
    if spec.auto_merge {
        out.push("merge_request.merge_when_pipeline_succeeds".into());
    }
    out
}

/// The merge request GitLab names in its answer to a push
/// (`remote: View merge request for x:` / `remote:   https://…/-/merge_requests/12`).
pub fn merge_request_in(output: &str) -> Option<(u64, String)> {
    output.split_whitespace().find_map(|word| {
        let url = word.trim_end_matches(['.', ',', ')']);
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return None;
        }
        let (_, rest) = url.split_once("/-/merge_requests/")?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let n = digits.parse().ok()?;
        (digits.len() == rest.len()).then(|| (n, url.to_string()))
    })
}

/// A URL without the user information (`https://user:secret@host/x` -> `https://host/x`).
pub fn strip_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            if path.is_empty() && !rest.contains('/') {
                format!("{scheme}://{host}")
            } else {
                format!("{scheme}://{host}/{path}")
            }
        }
        None => url.rsplit_once('@').map_or(url, |(_, h)| h).to_string(),
    }
}

/// `scheme://host[:port]/` of an http(s) URL: where the token may be sent.
pub fn http_origin(url: &str) -> Option<String> {
    let clean = strip_userinfo(url);
    let (scheme, rest) = clean.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let host = rest.split('/').next().filter(|h| !h.is_empty())?;
    Some(format!("{scheme}://{host}/"))
}

/// The web page of the repository behind a remote URL, when one can be formed:
/// `https://host/group/name` from `https://host/group/name.git`,
/// `git@host:group/name.git` or `ssh://git@host/group/name.git`.
pub fn web_url(remote_url: &str) -> Option<String> {
    let url = strip_userinfo(remote_url);
    let (host, path) = if let Some((scheme, rest)) = url.split_once("://") {
        if !matches!(scheme, "http" | "https" | "ssh" | "git+ssh" | "ssh+git") {
            return None;
        }
        let (host, path) = rest.split_once('/')?;
        let host = if scheme.contains("ssh") {
            host.split(':').next().unwrap_or(host).to_string()
        } else {
            format!("{scheme}://{host}")
        };
        (host, path.to_string())
    } else {
        // scp-like `host:group/name.git`
        let (host, path) = url.split_once(':')?;
        if host.contains('/') || path.starts_with('/') {
            return None;
        }
        (host.to_string(), path.to_string())
    };
    let path = path.trim_end_matches('/').trim_end_matches(".git");
    if path.is_empty() {
        return None;
    }
    let base = if host.contains("://") {
        host
    } else {
        format!("https://{host}")
    };
    Some(format!("{}/{path}", base.trim_end_matches('/')))
}

/// Where a person opens the pull request from `head` into `base`: GitLab's new
/// merge request page, GitHub's compare page; `None` for a host we cannot tell.
pub fn compare_url(web: &str, gitlab: bool, base: &str, head: &str) -> Option<String> {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    if gitlab {
        return Some(format!(
            "{web}/-/merge_requests/new?merge_request%5Bsource_branch%5D={}&merge_request%5Btarget_branch%5D={}",
            enc(head),
            enc(base)
        ));
    }
    let host = web.split("://").nth(1)?.split('/').next()?;
    (host == "github.com" || host.ends_with(".ghe.com"))
        .then(|| format!("{web}/compare/{}...{}?expand=1", enc(base), enc(head)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(auto_merge: bool) -> PullRequestSpec {
        PullRequestSpec {
            head: "gitops-flow/staging/payments".into(),
            base: "main".into(),
            title: "Promote payments 1.2.3 to staging".into(),
            body: "Promotes `payments`.\n\n<!-- gitops-flow {\"command\":\"promote\"} -->\n".into(),
            labels: vec!["gitops".into(), "staging".into()],
            auto_merge,
        }
    }

    #[test]
    fn push_options_carry_the_pull_request() {
        assert_eq!(
            gitlab_push_options(&spec(true)),
            [
                "merge_request.create",
                "merge_request.target=main",
                "merge_request.title=Promote payments 1.2.3 to staging",
                "merge_request.description=Promotes `payments`. <!-- gitops-flow {\"command\":\"promote\"} -->",
                "merge_request.label=gitops",
                "merge_request.label=staging",
                "merge_request.remove_source_branch",
                "merge_request.merge_when_pipeline_succeeds",
            ]
        );
        assert!(
            !gitlab_push_options(&spec(false))
                .iter()
                .any(|o| o.contains("merge_when_pipeline_succeeds"))
        );
        assert!(gitlab_push_options(&spec(true)).iter().all(|o| !o.contains('\n')));
    }

    #[test]
    fn merge_request_from_gitlab_answer() {
        let out = "remote: \nremote: View merge request for gitops-flow/staging/payments:\nremote:   https://gitlab.example.com/acme/env/-/merge_requests/12\nremote: \n";
        assert_eq!(
            merge_request_in(out),
            Some((12, "https://gitlab.example.com/acme/env/-/merge_requests/12".into()))
        );
        assert_eq!(
            merge_request_in(
                "remote:   https://gitlab.example.com/acme/env/-/merge_requests/new?merge_request%5Bsource_branch%5D=x"
            ),
            None
        );
    }

    #[test]
    fn urls() {
        assert_eq!(
            strip_userinfo("https://oauth2:s3cret@gitlab.com/a/b.git"),
            "https://gitlab.com/a/b.git"
        );
        assert_eq!(strip_userinfo("https://gitlab.com"), "https://gitlab.com");
        assert_eq!(
            http_origin("https://x:y@gitlab.com:8443/a/b.git").as_deref(),
            Some("https://gitlab.com:8443/")
        );
        assert_eq!(http_origin("file:///tmp/x.git"), None);
        assert_eq!(
            web_url("https://t:s@gitlab.com/acme/env.git").as_deref(),
            Some("https://gitlab.com/acme/env")
        );
        assert_eq!(
            web_url("git@gitlab.com:acme/env.git").as_deref(),
            Some("https://gitlab.com/acme/env")
        );
        assert_eq!(
            web_url("ssh://git@github.com:22/acme/env.git").as_deref(),
            Some("https://github.com/acme/env")
        );
        assert_eq!(web_url("file:///tmp/env.git"), None);
        assert_eq!(web_url("/tmp/env.git"), None);
        assert_eq!(
            compare_url("https://github.com/acme/env", false, "main", "gitops-flow/prod/a").as_deref(),
            Some("https://github.com/acme/env/compare/main...gitops-flow/prod/a?expand=1")
        );
        assert_eq!(
            compare_url("https://gitlab.com/acme/env", true, "main", "gitops-flow/prod/a").as_deref(),
            Some(
                "https://gitlab.com/acme/env/-/merge_requests/new?merge_request%5Bsource_branch%5D=gitops-flow/prod/a&merge_request%5Btarget_branch%5D=main"
            )
        );
        assert_eq!(
            compare_url("https://git.example.com/acme/env", false, "main", "x"),
            None
        );
    }
}
