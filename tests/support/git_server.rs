//! Real git servers on 127.0.0.1 for the `git` backend: a bare repository served by
//! `git http-backend` (smart HTTP, run as CGI behind a tiny HTTP server that demands
//! the token as Basic authentication) or over `file://`. Push options are
//! advertised, and a `pre-receive` hook records every push: its refs, each
//! `GIT_PUSH_OPTION_n`, and its whole environment; asked for a merge request
//! (`merge_request.create`), it answers as GitLab does, with the merge request's URL.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine;

use super::git;

/// The web address the hook's merge requests live under.
pub const MR_BASE: &str = "https://gitlab.example.com/acme/gitops-env/-/merge_requests";

pub struct GitServer {
    pub tmp: tempfile::TempDir,
    /// The bare repository.
    pub bare: PathBuf,
    /// `http://127.0.0.1:port/env.git` or `file:///…/env.git`.
    pub url: String,
    pub token: Option<String>,
    /// Every HTTP request: method, target, and whether it carried the token.
    pub requests: Arc<Mutex<Vec<String>>>,
}

/// One push as the hook saw it.
#[derive(Debug, Clone, Default)]
pub struct Push {
    /// (ref, old, new)
    pub refs: Vec<(String, String, String)>,
    pub options: Vec<String>,
    pub env: String,
}

const HOOK: &str = r#"#!/bin/sh
dir="@DIR@"
n=$(cat "$dir/pushes" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > "$dir/pushes"
env > "$dir/push-$n.env"
: > "$dir/push-$n.refs"
while read -r old new ref; do
  echo "$ref $old $new" >> "$dir/push-$n.refs"
done
: > "$dir/push-$n.options"
create=no
i=0
while [ "$i" -lt "${GIT_PUSH_OPTION_COUNT:-0}" ]; do
  v=$(printenv "GIT_PUSH_OPTION_$i")
  echo "$v" >> "$dir/push-$n.options"
  [ "$v" = "merge_request.create" ] && create=yes
  i=$((i + 1))
done
if [ -e "$dir/reject" ]; then
  echo "GitLab: You are not allowed to push code to this project."
  exit 1
fi
if [ "$create" = yes ]; then
  cut -d' ' -f1 "$dir/push-$n.refs" | while read -r ref; do
    case "$ref" in
      refs/heads/*)
        b=${ref#refs/heads/}
        key=$(printf '%s' "$b" | tr '/' '_')
        if [ ! -e "$dir/mr-$key" ]; then
          m=$(cat "$dir/mr-count" 2>/dev/null || echo 0)
          m=$((m + 1))
          echo "$m" > "$dir/mr-count"
          echo "$m" > "$dir/mr-$key"
        fi
        echo ""
        echo "View merge request for $b:"
        echo "  @MR@/$(cat "$dir/mr-$key")"
        echo ""
        ;;
    esac
  done
fi
exit 0
"#;

impl GitServer {
    /// A bare repository holding `main` and the tags of `seed` (a work repository).
    fn bare(seed: &Path) -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let bare = tmp.path().join("env.git");
        git(
            tmp.path(),
            &["init", "-q", "--bare", "-b", "main", bare.to_str().expect("utf-8")],
        );
        git(&bare, &["config", "receive.advertisePushOptions", "true"]);
        git(&bare, &["config", "http.receivepack", "true"]);
        let log = tmp.path().join("hook");
        std::fs::create_dir(&log).expect("mkdir");
        let hook = bare.join("hooks/pre-receive");
        std::fs::write(
            &hook,
            HOOK.replace("@DIR@", log.to_str().expect("utf-8"))
                .replace("@MR@", MR_BASE),
        )
        .expect("write hook");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        git(
            seed,
            &[
                "push",
                "-q",
                bare.to_str().expect("utf-8"),
                "refs/heads/main:refs/heads/main",
                "refs/tags/*:refs/tags/*",
            ],
        );
        // The seeding push is not one the tests look at.
        for f in std::fs::read_dir(&log).expect("ls") {
            std::fs::remove_file(f.expect("entry").path()).expect("rm");
        }
        (tmp, bare)
    }

    /// Served over `file://`.
    pub fn file(seed: &Path) -> GitServer {
        let (tmp, bare) = Self::bare(seed);
        let url = format!("file://{}", bare.display());
        GitServer {
            tmp,
            bare,
            url,
            token: None,
            requests: Default::default(),
        }
    }

    /// Served by `git http-backend` on 127.0.0.1, every request needing `token` as
    /// the password of HTTP Basic authentication (any user name, as GitLab).
    pub fn http(seed: &Path, token: &str) -> GitServer {
        let (tmp, bare) = Self::bare(seed);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/env.git", listener.local_addr().expect("addr"));
        let requests: Arc<Mutex<Vec<String>>> = Default::default();
        let root = tmp.path().to_path_buf();
        let (reqs, tok) = (requests.clone(), token.to_string());
        let backend = PathBuf::from(git(&root, &["--exec-path"])).join("git-http-backend");
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (reqs, tok, root, backend) = (reqs.clone(), tok.clone(), root.clone(), backend.clone());
                std::thread::spawn(move || serve(conn, &reqs, &tok, &root, &backend));
            }
        });
        GitServer {
            tmp,
            bare,
            url,
            token: Some(token.to_string()),
            requests,
        }
    }

    fn hook_dir(&self) -> PathBuf {
        self.tmp.path().join("hook")
    }

    /// Every push the hook saw, oldest first.
    pub fn pushes(&self) -> Vec<Push> {
        let n: usize = std::fs::read_to_string(self.hook_dir().join("pushes"))
            .map(|s| s.trim().parse().unwrap_or(0))
            .unwrap_or(0);
        (1..=n)
            .map(|i| {
                let read = |ext: &str| {
                    std::fs::read_to_string(self.hook_dir().join(format!("push-{i}.{ext}"))).unwrap_or_default()
                };
                Push {
                    refs: read("refs")
                        .lines()
                        .filter_map(|l| {
                            let mut p = l.split(' ');
                            Some((p.next()?.to_string(), p.next()?.to_string(), p.next()?.to_string()))
                        })
                        .collect(),
                    options: read("options").lines().map(String::from).collect(),
                    env: read("env"),
                }
            })
            .collect()
    }

    /// Makes the hook refuse every push from now on.
    pub fn reject_pushes(&self) {
        std::fs::write(self.hook_dir().join("reject"), "").expect("write");
    }

    /// `git` in the bare repository.
    pub fn git(&self, args: &[&str]) -> String {
        git(&self.bare, args)
    }

    pub fn rev(&self, r: &str) -> String {
        self.git(&["rev-parse", &format!("{r}^{{commit}}")])
    }

    /// `http.extraHeader` for this server, for the tests' own git commands.
    pub fn auth_config(&self) -> Vec<String> {
        match &self.token {
            Some(t) => vec![
                "-c".into(),
                format!(
                    "http.extraHeader=Authorization: Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("ci:{t}"))
                ),
            ],
            None => Vec::new(),
        }
    }

    /// A fresh clone (what a CI job checks out), detached at `at` when given.
    pub fn clone_to(&self, dir: &Path, at: Option<&str>) {
        let mut args: Vec<String> = self.auth_config();
        args.extend(["clone".into(), "-q".into(), self.url.clone(), dir.display().to_string()]);
        let parent = dir.parent().expect("parent");
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        git(parent, &argv);
        if let Some(at) = at {
            git(dir, &["checkout", "-q", "--detach", at]);
        }
    }

    /// Runs git in a clone with this server's credentials.
    pub fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        let mut all: Vec<String> = self.auth_config();
        all.extend(args.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = all.iter().map(String::as_str).collect();
        git(dir, &argv)
    }
}

fn serve(conn: std::net::TcpStream, reqs: &Mutex<Vec<String>>, token: &str, root: &Path, backend: &Path) {
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).expect("chunk size");
            let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).expect("chunk");
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        body.resize(n, 0);
        r.read_exact(&mut body).expect("body");
    }
    let user = header("authorization")
        .and_then(|a| a.strip_prefix("Basic ").map(str::to_string))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|d| String::from_utf8(d).ok())
        .and_then(|up| {
            up.split_once(':')
                .filter(|(_, p)| *p == token)
                .map(|(u, _)| u.to_string())
        });
    reqs.lock()
        .expect("lock")
        .push(format!("{method} {target} auth={}", user.is_some()));
    let Some(user) = user else {
        let _ = write!(
            w,
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"gitlab\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        return;
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut cmd = Command::new(backend);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_USER", &user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(t) = header("content-type") {
        cmd.env("CONTENT_TYPE", t);
    }
    if let Some(p) = header("git-protocol") {
        cmd.env("GIT_PROTOCOL", p);
    }
    if let Some(e) = header("content-encoding") {
        cmd.env("HTTP_CONTENT_ENCODING", e);
    }
    let mut child = cmd.spawn().expect("git http-backend runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let out = child.wait_with_output().expect("http-backend");
    let _ = writer.join();
    let text = out.stdout;
    let split = text
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| text.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let (head, payload) = match split {
        Some((i, n)) => (String::from_utf8_lossy(&text[..i]).into_owned(), &text[i + n..]),
        None => (String::new(), &text[..]),
    };
    let mut status = "200 OK".to_string();
    let mut extra = String::new();
    for h in head.lines() {
        match h.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_string(),
            Some(_) => extra.push_str(&format!("{}\r\n", h.trim_end())),
            None => {}
        }
    }
    let mut response = Vec::new();
    let _ = write!(
        response,
        "HTTP/1.1 {status}\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n",
        payload.len()
    );
    response.extend_from_slice(payload);
    let _ = w.write_all(&response);
}

/// A `git` on PATH ahead of the real one: logs every argument vector to the log
/// (one line each) and, once, before the first `push`, runs the script named by
/// `GIT_TEST_RACE` (another writer pushing first: the lost-lease case).
/// Returns (the directory to put first on PATH, the log).
pub fn git_wrapper(dir: &Path) -> (PathBuf, PathBuf) {
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .expect("sh")
            .stdout,
    )
    .expect("utf-8")
    .trim()
    .to_string();
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let log = dir.join("git-argv.log");
    let script = format!(
        r#"#!/bin/sh
printf '%s\n' "$*" >> "{log}"
for a in "$@"; do
  if [ "$a" = push ] && [ -n "$GIT_TEST_RACE" ] && [ ! -e "$GIT_TEST_RACE.done" ]; then
    touch "$GIT_TEST_RACE.done"
    env -u GIT_CONFIG_COUNT PATH="{path}" sh "$GIT_TEST_RACE" >> "{log}.race" 2>&1 || echo "race script failed" >> "{log}"
  fi
done
exec "{real}" "$@"
"#,
        log = log.display(),
        path = std::env::var("PATH").unwrap_or_default()
    );
    let path = bin.join("git");
    std::fs::write(&path, script).expect("write wrapper");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (bin, log)
}
