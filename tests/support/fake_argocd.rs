//! A fake Argo CD: `GET /api/v1/applications/{name}` answers with application JSON
//! shaped like Argo CD's own API (v1alpha1Application), following a script of
//! states, one per request (the last one repeats).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::json;

pub const ARGO_TOKEN: &str = "argocd-token-abc123";

#[derive(Debug, Clone)]
pub struct AppState {
    pub health: &'static str,
    pub sync: &'static str,
    pub revision: String,
    pub phase: &'static str,
}

impl AppState {
    pub fn new(health: &'static str, sync: &'static str, revision: &str, phase: &'static str) -> Self {
        AppState {
            health,
            sync,
            revision: revision.to_string(),
            phase,
        }
    }
}

pub struct FakeArgo {
    pub url: String,
    pub requests: Arc<Mutex<Vec<String>>>,
    app: String,
    script: Arc<Mutex<(Vec<AppState>, usize)>>,
}

/// The application JSON for one scripted state, shaped like Argo CD's `v1alpha1Application`.
fn application(app: &str, st: &AppState) -> serde_json::Value {
    let mut status = json!({
        "sync": {"status": st.sync, "revision": st.revision, "comparedTo": {"source": {"repoURL": "https://github.com/acme/gitops", "targetRevision": "HEAD"}, "destination": {"namespace": "default"}}},
        "health": {"status": st.health},
        "reconciledAt": "2024-01-01T00:00:00Z",
    });
    if !st.phase.is_empty() {
        status["operationState"] = json!({"phase": st.phase, "message": "", "startedAt": "2024-01-01T00:00:00Z"});
    }
    json!({"metadata": {"name": app, "namespace": "argocd"}, "spec": {"project": "default", "destination": {"namespace": "default"}}, "status": status})
}

/// Fails loudly when the fake would serve something Argo CD's own description rejects.
fn check_against_swagger(app: &str, script: &[AppState]) {
    let text =
        std::fs::read_to_string(super::fixtures().join("argocd/argocd-swagger-subset.json")).expect("argocd swagger");
    let root: serde_json::Value = serde_json::from_str(&text).expect("json");
    let schema = json!({"$ref": "#/definitions/v1alpha1Application"});
    for st in script {
        let mut errs = Vec::new();
        super::schema_check::validate_in(&root, &schema, &application(app, st), "application", &mut errs);
        assert!(
            errs.is_empty(),
            "the fake Argo CD would serve an invalid application: {errs:?}"
        );
    }
}

impl FakeArgo {
    pub fn start(app: &str, script: Vec<AppState>) -> FakeArgo {
        check_against_swagger(app, &script);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (reqs, app) = (requests.clone(), app.to_string());
        let script = Arc::new(Mutex::new((script, 0usize)));
        let (app_kept, script_kept) = (app.clone(), script.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (reqs, app, script) = (reqs.clone(), app.clone(), script.clone());
                std::thread::spawn(move || {
                    let mut w = conn.try_clone().unwrap();
                    let mut r = BufReader::new(conn);
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                        let mut auth = String::new();
                        let mut len = 0;
                        loop {
                            let mut h = String::new();
                            r.read_line(&mut h).unwrap();
                            let h = h.trim_end().to_string();
                            if h.is_empty() {
                                break;
                            }
                            let lower = h.to_ascii_lowercase();
                            if lower.starts_with("authorization:") {
                                auth = h[14..].trim().to_string();
                            }
                            if lower.starts_with("content-length:") {
                                len = h[15..].trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0; len];
                        r.read_exact(&mut body).unwrap();
                        reqs.lock().unwrap().push(target.clone());
                        let path = target.split('?').next().unwrap_or("");
                        let (status, body) = if auth != format!("Bearer {ARGO_TOKEN}") {
                            (
                                401,
                                json!({"error": "invalid session", "code": 16, "message": "invalid session: token signature is invalid"}),
                            )
                        } else if path != format!("/api/v1/applications/{app}") {
                            (
                                403,
                                json!({"error": "permission denied", "code": 7, "message": "permission denied"}),
                            )
                        } else {
                            let mut s = script.lock().unwrap();
                            let i = s.1.min(s.0.len() - 1);
                            s.1 += 1;
                            (200, application(&app, &s.0[i]))
                        };
                        let text = body.to_string();
                        let _ = write!(
                            w,
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
                            text.len()
                        );
                    }
                });
            }
        });
        FakeArgo {
            url,
            requests,
            app: app_kept,
            script: script_kept,
        }
    }

    /// Replaces the script (from its first state on), e.g. when a sync finishes.
    pub fn set_script(&self, script: Vec<AppState>) {
        check_against_swagger(&self.app, &script);
        *self.script.lock().unwrap() = (script, 0);
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}
