//! Benchmarks, printed as markdown tables (run by `bench/run.sh`):
//! API requests per command against the fake GitHub, promote with 100 ms latency
//! per request, report and file-mode promote on a generated 2,000 x 3 repository,
//! and the time per version edit on the corpus (`edits` writes the cases for the
//! ruamel.yaml comparison).
//! Speed is measured here, never asserted in tests.

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use support::fake_github::FakeGitHub;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gitops-flow")
}

/// Runs the binary under GNU time: (exit code, seconds, peak RSS in MB, stdout).
fn timed(args: &[&str], env: &[(String, String)]) -> (i32, f64, f64, String) {
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-f").arg("GFTIME %e %M").arg(bin()).args(args).env_clear();
    for k in ["PATH", "HOME"] {
        if let Ok(v) = std::env::var(k) {
            cmd.env(k, v);
        }
    }
    cmd.env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("run");
    let err = String::from_utf8_lossy(&o.stderr);
    let line = err
        .lines()
        .rev()
        .find(|l| l.starts_with("GFTIME"))
        .unwrap_or("GFTIME 0 0");
    let mut it = line.split_whitespace().skip(1);
    let secs: f64 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let kb: f64 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    (
        o.status.code().unwrap_or(-1),
        secs,
        kb / 1024.0,
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

/// CPU seconds (user + system) used by this process's finished children.
fn child_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    // Fields 16 and 17 of stat (cutime, cstime), counted after the command name.
    let tick = 100.0;
    let f = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (f(13) + f(14)) / tick
}

fn github_env(fake: &FakeGitHub, ws: &Path, inputs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = fake.env();
    env.push(("GITHUB_WORKSPACE".into(), ws.display().to_string()));
    for (k, v) in inputs {
        env.push((format!("INPUT_{}", k.to_uppercase()), v.to_string()));
    }
    env
}

fn requests(tmp: &Path) {
    println!("\n### API requests per command (github backend, fake GitHub, fresh shallow tag-less checkout per job)\n");
    println!("| command | requests | target |\n|---|---|---|");
    let (_s, seed) = support::scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&seed);
    let mut n = 0;
    let mut job = |fake: &FakeGitHub, inputs: &[(&str, &str)], extra: &[(&str, &str)]| {
        n += 1;
        let ws = tmp.join(format!("req{n}"));
        fake.checkout(&ws);
        fake.clear_log();
        let mut env = github_env(fake, &ws, inputs);
        env.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
        let (code, .., out) = timed(&[], &env);
        assert_eq!(code, 0, "{inputs:?}: {out}");
        fake.requests().len()
    };
    let stage = job(
        &fake,
        &[("command", "stage"), ("service", "payments"), ("version", "1.2.0")],
        &[],
    );
    println!("| tag `stage` (new branch + pull request) | {stage} | |");
    fake.merge_pull(1);
    let ev = tmp.join("ev.json");
    std::fs::write(&ev, fake.pull_event(1).to_string()).unwrap();
    let evs = ev.display().to_string();
    let deploy = job(
        &fake,
        &[("command", "deploy")],
        &[("GITHUB_EVENT_NAME", "pull_request"), ("GITHUB_EVENT_PATH", &evs)],
    );
    println!("| tag `deploy` (pull_request closed+merged) | {deploy} | <= 2 |");
    // The normal case: main moves on, staging's tag is behind it.
    fake.advance_main("later");
    let promote = job(&fake, &[("command", "promote"), ("service", "payments")], &[]);
    println!("| tag `promote`, source tag behind main, with version outputs | {promote} | <= 2 |");
    let rollback = job(&fake, &[("command", "rollback"), ("service", "payments")], &[]);
    println!("| tag `rollback` | {rollback} | <= 2 |");

    let (_s2, seed2) = support::scratch("make_file_repo.sh");
    let fake2 = FakeGitHub::start(&seed2);
    let st = job(
        &fake2,
        &[("command", "stage"), ("service", "payments"), ("version", "1.2.0")],
        &[],
    );
    println!("| file-mode `stage`, direct | {st} | <= 2 |");
    let pr = job(&fake2, &[("command", "promote"), ("service", "payments")], &[]);
    println!("| file-mode `promote` through a pull request (branch, commit, PR, labels, auto-merge) | {pr} | <= 5 |");
    let argo = support::fake_argocd::FakeArgo::start(
        "payments-dev",
        vec![support::fake_argocd::AppState::new(
            "Healthy",
            "Synced",
            &fake2.rev("main").unwrap(),
            "Succeeded",
        )],
    );
    let status = job(
        &fake2,
        &[
            ("command", "status"),
            ("service", "payments"),
            ("environment", "dev"),
            ("argocd-server", &argo.url),
            ("argocd-token", support::fake_argocd::ARGO_TOKEN),
        ],
        &[],
    );
    println!("| `status`, one poll, file mode (Argo CD gate) | {status} | <= 2 |");
    // The default gate: Flux's status on the commit that staged the version.
    let staged = fake2.rev("main").unwrap();
    fake2.add_status(&staged, "kustomization/payments-dev/0c9c2e41", "success");
    let status = job(
        &fake2,
        &[("command", "status"), ("service", "payments"), ("environment", "dev")],
        &[],
    );
    println!("| `status`, one poll, file mode (commit-status gate) | {status} | <= 2 |");

    // 100 commits of history on the file, the last one a bump.
    let (_s3, seed3) = support::scratch("make_file_repo.sh");
    let file = "overlays/dev/payments/values.yaml";
    let text = std::fs::read_to_string(seed3.join(file)).unwrap();
    for i in 0..99 {
        std::fs::write(
            seed3.join(file),
            text.replace("replicaCount: 2", &format!("replicaCount: {}", i + 3)),
        )
        .unwrap();
        support::git(&seed3, &["commit", "-q", "-am", &format!("scale {i}")]);
    }
    std::fs::write(seed3.join(file), text.replace("tag: \"1.0.0\"", "tag: \"1.3.0\"")).unwrap();
    support::git(
        &seed3,
        &[
            "commit",
            "-q",
            "-am",
            "Stage payments 1.3.0\n\nGitops-Flow-Command: stage\nGitops-Flow-Service: payments\nGitops-Flow-Environment: dev\nGitops-Flow-Version: 1.3.0",
        ],
    );
    let fake3 = FakeGitHub::start(&seed3);
    let rb = job(
        &fake3,
        &[("command", "rollback"), ("service", "payments"), ("environment", "dev")],
        &[],
    );
    println!("| file-mode `rollback`, 100 commits of history on the file | {rb} | <= 3 |");
    // The same history, the last change through a merged pull request (its squash
    // commit carries no trailers).
    let (_s4, seed4) = support::scratch("make_file_repo.sh");
    for i in 0..99 {
        std::fs::write(
            seed4.join(file),
            text.replace("replicaCount: 2", &format!("replicaCount: {}", i + 3)),
        )
        .unwrap();
        support::git(&seed4, &["commit", "-q", "-am", &format!("scale {i}")]);
    }
    let fake4 = FakeGitHub::start(&seed4);
    fake4.push_commit(
        "bump-payments",
        "main",
        file,
        &text.replace("tag: \"1.0.0\"", "tag: \"1.3.0\""),
    );
    let number = fake4.open_pull("bump-payments", "main", &[]);
    fake4.merge_pull(number);
    let rb = job(
        &fake4,
        &[("command", "rollback"), ("service", "payments"), ("environment", "dev")],
        &[],
    );
    println!("| file-mode `rollback`, 100 commits, last change through a merged pull request | {rb} | <= 3 |");
}

/// Peak memory of a direct file-mode `stage` that edits one value in a ~55 MB
/// manifest (local backend), next to the file's size.
fn memory(tmp: &Path) {
    println!("\n### memory: one edit in a large manifest (local backend, whole process, GNU time)\n");
    let dir = tmp.join("bigmanifest");
    Command::new("git")
        .args(["init", "-q", "-b", "main"])
        .arg(&dir)
        .status()
        .unwrap();
    std::fs::write(
        dir.join("gitops-flow.yaml"),
        "environments:\n  - { name: dev, track: file, direct: true }\nservices:\n  big:\n    version:\n      - file: values.yaml\n        key: image.tag\n",
    )
    .unwrap();
    let mut text =
        String::from("# a large values file\nimage:\n  repository: ghcr.io/acme/big\n  tag: \"1.0.0\"\nitems:\n");
    let mut i = 0;
    while text.len() < 55 * 1024 * 1024 {
        text.push_str(&format!(
            "  - name: item-{i:08}\n    value: 'some text {i}' # comment\n    flags: [a, b, c]\n"
        ));
        i += 1;
    }
    std::fs::write(dir.join("values.yaml"), &text).unwrap();
    for args in [
        &["add", "-A"][..],
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@example.com",
            "commit",
            "-qm",
            "big",
        ][..],
    ] {
        Command::new("git").args(args).current_dir(&dir).status().unwrap();
    }
    let (code, t, mb, out) = timed(
        &[
            "stage",
            "--path",
            &dir.display().to_string(),
            "--service",
            "big",
            "--version",
            "1.1.0",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    let size = text.len() as f64 / 1024.0 / 1024.0;
    println!("| manifest | wall time | peak RSS | RSS / file size | target |\n|---|---|---|---|---|");
    println!(
        "| {size:.1} MB, {i} list items | {t:.2} s | {mb:.0} MB | {:.1}x | a small multiple (<= 8x) |",
        mb / size
    );
}

/// `report` of 2,000 services x 3 environments on the github backend from a shallow,
/// tag-less checkout, with 100 ms latency per request.
fn github_report(tmp: &Path) {
    let n = 2000;
    println!("\n### report, {n} services x 3 environments, github backend, shallow tag-less checkout\n");
    let repo = tmp.join("ghreport");
    big_tag_repo(&repo, n);
    let fake = FakeGitHub::start(&repo);
    let ws = tmp.join("ghreport-ws");
    fake.checkout(&ws);
    let cells = n * 3;
    println!("| latency per request | requests | wall time | peak RSS | target |\n|---|---|---|---|---|");
    for ms in [0, 100] {
        fake.set_latency(ms);
        fake.clear_log();
        let cpu_before = child_cpu();
        let (code, t, mb, out) = timed(&[], &github_env(&fake, &ws, &[("command", "report")]));
        assert_eq!(code, 0, "{out}");
        eprintln!(
            "report at {ms} ms: gitops-flow and git children CPU {:.2} s",
            child_cpu() - cpu_before
        );
        println!(
            "| {ms} ms | {} | {t:.2} s | {mb:.1} MB | <= {} requests, < 5 s at 100 ms |",
            fake.requests().len(),
            1 + cells.div_ceil(100)
        );
    }
}

fn latency(tmp: &Path) {
    println!("\n### promote with 100 ms latency per request (whole process, github backend)\n");
    let (_s, seed) = support::scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&seed);
    let ws = tmp.join("lat");
    fake.checkout(&ws);
    let head = fake.rev("main").unwrap();
    let (code, ..) = timed(
        &[],
        &github_env(
            &fake,
            &ws,
            &[("command", "deploy"), ("service", "payments"), ("revision", &head)],
        ),
    );
    assert_eq!(code, 0);
    // The normal case: main has moved on since staging was deployed.
    fake.advance_main("later");
    fake.set_latency(100);
    let mut times = Vec::new();
    for i in 0..5 {
        // Alternate between moving production forward and back so every run writes.
        let (cmd, extra) = if i % 2 == 0 {
            ("promote", None)
        } else {
            ("rollback", Some(head.clone()))
        };
        let _ = extra;
        // A fresh shallow checkout per job, as actions/checkout leaves it.
        let ws = tmp.join(format!("lat{i}"));
        fake.checkout(&ws);
        fake.clear_log();
        let t = Instant::now();
        let (code, ..) = timed(
            &[],
            &github_env(&fake, &ws, &[("command", cmd), ("service", "payments")]),
        );
        assert_eq!(code, 0);
        times.push((cmd, t.elapsed().as_secs_f64(), fake.requests().len()));
    }
    println!("| run | command | requests | wall time |\n|---|---|---|---|");
    for (i, (c, t, r)) in times.iter().enumerate() {
        println!("| {} | {c} | {r} | {:.3} s |", i + 1, t);
    }
    let promotes: Vec<f64> = times.iter().filter(|t| t.0 == "promote").map(|t| t.1).collect();
    println!("\nmedian promote: {:.3} s (target < 0.5 s)", median(promotes));
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// A repository of `n` services x (dev, staging, production), all tag-tracked,
/// written with `git fast-import` (one commit, 12 tags per... 4 per service-env pair).
fn big_tag_repo(dir: &Path, n: usize) {
    Command::new("git")
        .args(["init", "-q", "-b", "main"])
        .arg(dir)
        .status()
        .unwrap();
    let mut fi = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut s = String::new();
    s.push_str("blob\nmark :1\ndata <<EOF\nenvironments:\n  - { name: dev }\n  - { name: staging }\n  - { name: production }\nEOF\n");
    for i in 0..n {
        let chart = format!("apiVersion: v2\nname: svc{i}\nversion: 0.1.0\nappVersion: \"1.{i}.0\"\n");
        s.push_str(&format!("blob\nmark :{}\ndata {}\n{chart}\n", i + 2, chart.len()));
    }
    s.push_str("commit refs/heads/main\nmark :100000\ncommitter B <b@example.com> 1700000000 +0000\ndata 5\nbulk\n");
    s.push_str("M 100644 :1 gitops-flow.yaml\n");
    for i in 0..n {
        s.push_str(&format!("M 100644 :{} charts/svc{i}/Chart.yaml\n", i + 2));
    }
    // 30 later commits, each bumping a thirtieth of the services: tags spread over
    // 31 commits (dev at the service's bump, staging one commit before, production
    // at the start), as in a repository with a history.
    let rounds = 30;
    for k in 1..=rounds {
        s.push_str(&format!(
            "commit refs/heads/main\nmark :{}\ncommitter B <b@example.com> {} +0000\ndata 4\nbump\nfrom :{}\n",
            100000 + k,
            1700000000 + k,
            100000 + k - 1
        ));
        for i in (0..n).filter(|i| i % rounds == k - 1) {
            let chart = format!("apiVersion: v2\nname: svc{i}\nversion: 0.1.0\nappVersion: \"2.{i}.0\"\n");
            s.push_str(&format!(
                "M 100644 inline charts/svc{i}/Chart.yaml\ndata {}\n{chart}\n",
                chart.len()
            ));
        }
    }
    for i in 0..n {
        let k = i % rounds + 1;
        for (env, mark) in [("dev", 100000 + k), ("staging", 100000 + k - 1), ("production", 100000)] {
            s.push_str(&format!("reset refs/tags/svc{i}-{env}\nfrom :{mark}\n\n"));
            s.push_str(&format!("reset refs/tags/svc{i}-{env}-rollback\nfrom :100000\n\n"));
        }
    }
    fi.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    assert!(fi.wait().unwrap().success());
    Command::new("git")
        .args(["reset", "-q", "--hard"])
        .current_dir(dir)
        .status()
        .unwrap();
}

/// A monorepo of `n` services x (dev, staging, production), file-tracked.
fn big_file_repo(dir: &Path, n: usize) {
    Command::new("git")
        .args(["init", "-q", "-b", "main"])
        .arg(dir)
        .status()
        .unwrap();
    let mut fi = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut cfg = String::from(
        "environments:\n  - { name: dev, track: file, direct: true }\n  - { name: staging, track: file }\n  - { name: production, track: file }\nservices:\n",
    );
    for i in 0..n {
        cfg.push_str(&format!(
            "  svc{i}:\n    version:\n      - file: apps/{{env}}/svc{i}/values.yaml\n        key: image.tag\n"
        ));
    }
    let mut s = format!(
        "commit refs/heads/main\ncommitter B <b@example.com> 1700000000 +0000\ndata 5\nbulk\nM 100644 inline gitops-flow.yaml\ndata {}\n{cfg}\n",
        cfg.len()
    );
    for i in 0..n {
        for env in ["dev", "staging", "production"] {
            let v = format!(
                "# svc{i} in {env}\nreplicaCount: 2\nimage:\n  repository: ghcr.io/acme/svc{i}\n  tag: \"1.0.{i}\"\n"
            );
            s.push_str(&format!(
                "M 100644 inline apps/{env}/svc{i}/values.yaml\ndata {}\n{v}\n",
                v.len()
            ));
        }
    }
    fi.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    assert!(fi.wait().unwrap().success());
    Command::new("git")
        .args(["reset", "-q", "--hard"])
        .current_dir(dir)
        .status()
        .unwrap();
}

fn scale(tmp: &Path) {
    let n = 2000;
    println!("\n### {n} services x 3 environments, local backend (whole process, GNU time)\n");
    let tags = tmp.join("bigtags");
    big_tag_repo(&tags, n);
    let count = String::from_utf8(
        Command::new("git")
            .args(["tag"])
            .current_dir(&tags)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .lines()
    .count();
    let files = tmp.join("bigfiles");
    big_file_repo(&files, n);
    println!("| run | wall time | peak RSS | target |\n|---|---|---|---|");
    let mut best = (f64::MAX, 0.0);
    for _ in 0..3 {
        let (code, t, mb, out) = timed(&["report", "--path", &tags.display().to_string()], &[]);
        assert_eq!(code, 0, "{out}");
        if t < best.0 {
            best = (t, mb);
        }
    }
    println!(
        "| report ({count} tags, {} cells) | {:.2} s | {:.1} MB | < 1 s, < 100 MB |",
        n * 3,
        best.0,
        best.1
    );
    let path = files.display().to_string();
    let (code, t, mb, out) = timed(&["promote", "--path", &path, "--service", "svc1234"], &[]);
    assert_eq!(code, 0, "{out}");
    println!("| promote (file mode, dev -> staging pull request branch) | {t:.2} s | {mb:.1} MB | |");
    let (code, t, mb, out) = timed(
        &["stage", "--path", &path, "--service", "svc777", "--version", "2.0.0"],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    println!("| stage (file mode, direct commit on the checked-out main) | {t:.2} s | {mb:.1} MB | |");
    let (code, t, mb, out) = timed(&["report", "--path", &path], &[]);
    assert_eq!(code, 0, "{out}");
    println!("| report (file mode, {} cells) | {t:.2} s | {mb:.1} MB | |", n * 3);
}

/// Writes the corpus's key locations and our time per edit for `bench/ruamel_compare.py`.
fn edits(out: &Path) {
    use gitops_flow::manifest::{self, Doc, KeyPath, Style};
    use gitops_flow::manifest::{Location, LocationKind};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if !root.is_dir() {
        println!("\n(edit benchmark skipped: ../shared/corpus is absent)");
        return;
    }
    let mut cases = Vec::new();
    let mut total = std::time::Duration::ZERO;
    let mut parse_only = std::time::Duration::ZERO;
    let mut n = 0;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|d| d.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for d in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d).unwrap().flatten().map(|f| f.path()).collect();
        files.sort();
        for f in files {
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            let Ok(docs) = Doc::parse_all(&text, "f") else { continue };
            if docs.len() != 1 {
                continue; // ruamel's single-document round trip; multi-doc needs load_all
            }
            for (path, sc) in docs[0].root.leaves() {
                let last = path.rsplit('.').next().unwrap_or(&path).split('[').next().unwrap_or("");
                if !["tag", "newTag", "appVersion", "version"].contains(&last)
                    || sc.style == Style::Block
                    || KeyPath::parse(&path).is_err()
                    || path.contains(['/', ' ', '"'])
                {
                    continue;
                }
                let loc = Location::new("f", LocationKind::key(path.clone()));
                let tp = Instant::now();
                let _ = Doc::parse_all(&text, "f");
                parse_only += tp.elapsed();
                let t = Instant::now();
                let r = manifest::set(&text, &loc, "9.8.7");
                total += t.elapsed();
                n += 1;
                if let Ok(ed) = r
                    && ed.changed
                {
                    cases.push(serde_json::json!({"file": f.display().to_string(), "path": path, "version": "9.8.7", "expected": ed.text}));
                }
            }
        }
    }
    std::fs::write(out, serde_json::to_string(&cases).unwrap()).unwrap();
    println!("\n### version edits on the corpus (single-document files, key locations)\n");
    println!(
        "(one parse of the file alone: {:.1} µs on average)",
        parse_only.as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "gitops-flow: {n} edits, {:.1} µs per edit (parse + locate + splice + re-parse check); {} cases written for ruamel.yaml",
        total.as_secs_f64() * 1e6 / n as f64,
        cases.len()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes `--bench`; pick sections with GITOPS_FLOW_BENCH.
    let which =
        std::env::var("GITOPS_FLOW_BENCH").unwrap_or_else(|_| "requests,latency,ghreport,scale,memory,edits".into());
    let tmp = tempfile::tempdir().unwrap();
    let _ = args;
    for w in which.split(',') {
        match w {
            "requests" => requests(tmp.path()),
            "ghreport" => github_report(tmp.path()),
            "memory" => memory(tmp.path()),
            "latency" => latency(tmp.path()),
            "scale" => scale(tmp.path()),
            "edits" => edits(
                &std::env::var("GITOPS_FLOW_EDIT_CASES")
                    .map(PathBuf::from)
                    .unwrap_or_else(|_| tmp.path().join("cases.json")),
            ),
            other => eprintln!("unknown section {other}"),
        }
    }
}
