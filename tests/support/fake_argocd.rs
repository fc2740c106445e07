//! A fake Argo CD: `GET /api/v1/applications/{name}` answers with application JSON
//! shaped like Argo CD's own API (v1alpha1Application), following a script of
//! states, one per request (the last one repeats). `POST .../{name}/sync` checks
//! its body against Argo CD's swagger, refuses while an operation runs (as Argo CD
//! does: "another operation is already in progress"), and otherwise answers as
//! `on_sync` says: accept (the script continues with the states given) or refuse.

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

/// How the fake answers a sync request (when no operation is running).
#[derive(Debug, Clone)]
pub enum OnSync {
    /// Accepted: the application follows these states from now on.
    Accept(Vec<AppState>),
    /// Refused with this HTTP status and message (a sync window, RBAC).
    Refuse(u16, &'static str),
}

pub struct FakeArgo {
    pub url: String,
    pub requests: Arc<Mutex<Vec<String>>>,
    app: String,
    script: Arc<Mutex<(Vec<AppState>, usize)>>,
    on_sync: Arc<Mutex<OnSync>>,
    /// The bodies of the sync requests received, in order.
    syncs: Arc<Mutex<Vec<serde_json::Value>>>,
    violations: Arc<Mutex<Vec<String>>>,
}

fn swagger() -> serde_json::Value {
    let text =
        std::fs::read_to_string(super::fixtures().join("argocd/argocd-swagger-subset.json")).expect("argocd swagger");
    serde_json::from_str(&text).expect("json")
}

/// The schema of the sync request body: the body parameter of
/// `POST /api/v1/applications/{name}/sync` in Argo CD's swagger. The subset in
/// `shared/argocd` names `applicationApplicationSyncRequest` without carrying its
/// definition; until it does, a stand-in with the fields of Argo CD's
/// `ApplicationSyncRequest` that a client like gitops-flow may send is used
/// (anything else is refused).
fn sync_request_schema(root: &serde_json::Value) -> serde_json::Value {
    let op = &root["paths"]["/api/v1/applications/{name}/sync"]["post"];
    assert!(op.is_object(), "the swagger subset has no POST .../sync operation");
    let body = op["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["in"] == "body"))
        .expect("the sync operation takes a body");
    assert_eq!(body["required"], true, "the sync body is required");
    let schema = body["schema"].clone();
    let name = schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/definitions/"))
        .expect("a $ref body");
    if root["definitions"].get(name).is_some() {
        return schema;
    }
    json!({
        "type": "object",
        "title": "stand-in for applicationApplicationSyncRequest (missing from the subset)",
        "properties": {
            "name": {"type": "string"},
            "appNamespace": {"type": "string"},
            "project": {"type": "string"},
            "revision": {"type": "string"},
            "dryRun": {"type": "boolean"},
            "prune": {"type": "boolean"},
        }
    })
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
    let root = swagger();
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
        let root = swagger();
        let sync_schema = sync_request_schema(&root);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (reqs, app) = (requests.clone(), app.to_string());
        let script = Arc::new(Mutex::new((script, 0usize)));
        let on_sync = Arc::new(Mutex::new(OnSync::Refuse(
            403,
            "permission denied: the test did not expect a sync",
        )));
        let syncs = Arc::new(Mutex::new(Vec::new()));
        let violations = Arc::new(Mutex::new(Vec::new()));
        let (app_kept, script_kept) = (app.clone(), script.clone());
        let (on_sync_kept, syncs_kept, violations_kept) = (on_sync.clone(), syncs.clone(), violations.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (reqs, app, script) = (reqs.clone(), app.clone(), script.clone());
                let (on_sync, syncs, violations) = (on_sync.clone(), syncs.clone(), violations.clone());
                let (root, sync_schema) = (root.clone(), sync_schema.clone());
                std::thread::spawn(move || {
                    let mut w = conn.try_clone().unwrap();
                    let mut r = BufReader::new(conn);
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let method = line.split_whitespace().next().unwrap_or("").to_string();
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
                        } else if method == "POST" && path == format!("/api/v1/applications/{app}/sync") {
                            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                            let mut errs = Vec::new();
                            super::schema_check::validate_in(&root, &sync_schema, &v, "sync body", &mut errs);
                            syncs.lock().unwrap().push(v);
                            let mut s = script.lock().unwrap();
                            // The state the last GET showed.
                            let i = s.1.saturating_sub(1).min(s.0.len() - 1);
                            let running = matches!(s.0[i].phase, "Running" | "Terminating");
                            if !errs.is_empty() {
                                violations.lock().unwrap().extend(errs.iter().cloned());
                                (
                                    400,
                                    json!({"error": errs.join("; "), "code": 3, "message": errs.join("; ")}),
                                )
                            } else if running {
                                (
                                    400,
                                    json!({"error": "another operation is already in progress", "code": 9, "message": "another operation is already in progress"}),
                                )
                            } else {
                                match on_sync.lock().unwrap().clone() {
                                    OnSync::Refuse(status, msg) => {
                                        (status, json!({"error": msg, "code": 7, "message": msg}))
                                    }
                                    OnSync::Accept(next) => {
                                        let answer = application(&app, &s.0[i]);
                                        *s = (next, 0);
                                        (200, answer)
                                    }
                                }
                            }
                        } else if path != format!("/api/v1/applications/{app}") || method != "GET" {
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
            on_sync: on_sync_kept,
            syncs: syncs_kept,
            violations: violations_kept,
        }
    }

    /// How later sync requests are answered (the states are checked against the swagger).
    pub fn on_sync(&self, answer: OnSync) {
        if let OnSync::Accept(next) = &answer {
            check_against_swagger(&self.app, next);
        }
        *self.on_sync.lock().unwrap() = answer;
    }

    /// The sync request bodies received.
    pub fn syncs(&self) -> Vec<serde_json::Value> {
        self.syncs.lock().unwrap().clone()
    }

    /// Requests the swagger would reject (none, in a passing test).
    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
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
