//! Edit fidelity on real files: `../shared/corpus` (other people's files, read in
//! place, never copied). For every file and every version location found in it,
//! the edited file differs from the original in exactly that value and parses to
//! the same documents except that value. Skips, saying so, when the folder is absent
//! — and fails instead with `CI=true`.

mod support;

use std::path::{Path, PathBuf};

use gitops_flow::manifest::{self, Doc, KeyPath, Node, Style};
use gitops_flow::manifest::{Location, LocationKind};
use yaml_rust2::{Yaml, YamlLoader};

fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    p.is_dir().then_some(p)
}

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(root).unwrap().flatten() {
        if dir.path().is_dir() {
            for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

/// Every version location in a file: keys named like versions, Flux markers, kustomize images.
fn locations(text: &str, docs: &[Doc]) -> Vec<LocationKind> {
    let mut out = Vec::new();
    let names = ["tag", "newTag", "appVersion", "version", "image", "targetRevision"];
    for d in docs {
        for (path, sc) in d.root.leaves() {
            let last = path.rsplit('.').next().unwrap_or(&path);
            let last = last.split('[').next().unwrap_or(last);
            let segs_ok = path
                .split('.')
                .all(|s| !s.is_empty() && !s.contains(['/', ' ', '"', '\'']));
            if names.contains(&last)
                && segs_ok
                && KeyPath::parse(&path).is_ok()
                && sc.style != Style::Block
                && !path.contains('\u{0}')
            {
                let k = LocationKind::key(path.clone());
                if !out.contains(&k) {
                    out.push(k);
                }
            }
        }
        if let Some(Node::Seq { items, .. }) = d.root.get_path(&KeyPath::parse("images").unwrap()) {
            for i in items {
                if let Some(Node::Scalar(n)) = i.get(&manifest::Seg::Key("name".into())) {
                    let k = LocationKind::KustomizeImage(n.value.clone());
                    if !out.contains(&k) {
                        out.push(k);
                    }
                }
            }
        }
    }
    for line in text.lines() {
        if let Some(i) = line.find("\"$imagepolicy\"") {
            let rest = &line[i..];
            if let Some(v) = rest.split('"').nth(3) {
                let policy: Vec<&str> = v.split(':').collect();
                if policy.len() >= 2 {
                    let k = LocationKind::ImagePolicy(format!("{}:{}", policy[0], policy[1]));
                    if !out.contains(&k) {
                        out.push(k);
                    }
                }
            }
        }
    }
    out
}

fn leaves(y: &Yaml, path: String, out: &mut Vec<(String, Yaml)>) {
    match y {
        Yaml::Hash(h) => {
            for (k, v) in h {
                leaves(v, format!("{path}/{k:?}"), out);
            }
        }
        Yaml::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                leaves(v, format!("{path}/{i}"), out);
            }
        }
        other => out.push((path, other.clone())),
    }
}

fn as_text(y: &Yaml) -> String {
    match y {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// Checks one edit; returns a description of what is wrong, if anything.
fn check(orig: &str, edited: &str, version: &str, kind: &LocationKind) -> Option<String> {
    // Bytes: every changed line differs in one contiguous region (the value); the
    // only lines added are inserted `newTag:` / `digest:` lines.
    let inserted = matches!(kind, LocationKind::KustomizeImage(_)) && edited.lines().count() > orig.lines().count();
    let (ol, el): (Vec<&str>, Vec<&str>) = (orig.split('\n').collect(), edited.split('\n').collect());
    let (mut i, mut j) = (0, 0);
    while i < ol.len() || j < el.len() {
        match (ol.get(i), el.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (_, Some(b))
                if inserted
                    && (b.trim_start().starts_with("newTag: ") || b.trim_start().starts_with("digest: "))
                    && ol.get(i) != Some(b)
                    && ol.get(i).is_none_or(|a| {
                        !a.trim_start().starts_with("newTag") && !a.trim_start().starts_with("digest")
                    }) =>
            {
                j += 1;
            }
            (Some(a), Some(b)) => {
                let p = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
                let s = a
                    .bytes()
                    .rev()
                    .zip(b.bytes().rev())
                    .take_while(|(x, y)| x == y)
                    .count()
                    .min(a.len() - p)
                    .min(b.len() - p);
                let (om, nm) = (&a[p..a.len() - s], &b[p..b.len() - s]);
                if om.contains(" #") || nm.contains(" #") || om.contains(": ") {
                    return Some(format!("line {} changed beyond a value: {a:?} -> {b:?}", i + 1));
                }
                i += 1;
                j += 1;
            }
            _ => return Some("lines added or removed".into()),
        }
    }
    // Documents: equal except leaves now holding the version.
    let (Ok(a), Ok(b)) = (YamlLoader::load_from_str(orig), YamlLoader::load_from_str(edited)) else {
        return Some("edited file does not parse".into());
    };
    if a.len() != b.len() {
        return Some("document count changed".into());
    }
    let (mut la, mut lb) = (Vec::new(), Vec::new());
    for (x, y) in a.iter().zip(&b) {
        leaves(x, String::new(), &mut la);
        leaves(y, String::new(), &mut lb);
    }
    let main = version.split('@').next().unwrap_or(version);
    let mut diffs = 0;
    let mut j = 0;
    for (path, v) in &lb {
        match la.get(j) {
            Some((pa, va)) if pa == path => {
                j += 1;
                if va != v {
                    diffs += 1;
                    let t = as_text(v);
                    let digest = version.split_once('@').map(|d| d.1);
                    let ok = matches!(v, Yaml::String(_))
                        && (t == version
                            || t == main
                            || Some(t.as_str()) == digest
                            || t.ends_with(&format!(":{version}"))
                            || t.ends_with(&format!(":{main}")));
                    if !ok {
                        return Some(format!("{path}: {va:?} became {v:?}"));
                    }
                }
            }
            _ if inserted && (path.ends_with("\"newTag\")") || path.ends_with("\"digest\")")) => {
                diffs += 1;
            }
            _ => return Some(format!("structure changed at {path}")),
        }
    }
    if j != la.len() {
        return Some("a value disappeared".into());
    }
    (diffs == 0).then(|| "nothing changed".into())
}

#[test]
fn corpus_edits_change_exactly_the_value() {
    let Some(root) = corpus() else {
        support::skip_unless_ci(
            "../shared/corpus is absent; the project's own fixtures in src/manifest/tests.rs cover its hard cases",
        );
        return;
    };
    let digest = format!("9.8.7@sha256:{}", "ab12".repeat(16));
    let (mut files_n, mut edits, mut refused, mut broken) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    let mut refusals = Vec::new();
    for (f, version) in files(&root)
        .into_iter()
        .flat_map(|f| [(f.clone(), "9.8.7-gf.1"), (f, digest.as_str())])
    {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let name = f.strip_prefix(&root).unwrap().display().to_string();
        let docs = match Doc::parse_all(&text, &name) {
            Ok(d) => d,
            Err(e) => {
                assert_eq!(e.exit_code(), 2, "{name}: {e}");
                broken += 1;
                continue;
            }
        };
        files_n += 1;
        for kind in locations(&text, &docs) {
            match manifest::set(&text, &Location::new(name.as_str(), kind.clone()), version) {
                Ok(ed) if !ed.changed => {}
                Ok(ed) => {
                    edits += 1;
                    if let Some(why) = check(&text, &ed.text, version, &kind) {
                        failures.push(format!("{name} {kind:?}: {why}"));
                    }
                    // Reading back gives the version (tag only for Flux `:tag` fields).
                    let back = manifest::read(&ed.text, &Location::new(name.as_str(), kind.clone())).unwrap();
                    let main = version.split('@').next().unwrap();
                    assert!(
                        back == version || back == main || back.ends_with(version),
                        "{name} {kind:?}: read back {back}"
                    );
                }
                Err(e) => {
                    assert_eq!(e.exit_code(), 2, "{name} {kind:?}: refusals are input errors: {e}");
                    assert!(
                        e.place().is_some_and(|p| p.file == name),
                        "{name}: refusal names the file: {e}"
                    );
                    refused += 1;
                    refusals.push(format!("{name} {kind:?}: {e}"));
                }
            }
        }
    }
    eprintln!(
        "corpus: {} files parsed ({} not YAML), {edits} edits verified, {refused} locations refused (two versions per location: plain and with digest)",
        files_n / 2,
        broken / 2
    );
    for r in refusals.iter().take(15) {
        eprintln!("  refused: {r}");
    }
    assert!(
        failures.is_empty(),
        "{} wrong edits:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(edits > 300, "the corpus should give many edits, got {edits}");
}

#[test]
fn flux_setter_pairs_match_upstream_expectations() {
    let Some(root) = corpus() else {
        support::skip_unless_ci("../shared/corpus is absent");
        return;
    };
    let d = root.join("D_flux_markers");
    let pre = "fluxcd__image-automation-controller__internal__update__testdata__setters__";
    // gitops-flow sets versions (tag and digest), never image names: the upstream
    // expectations also rename the image, which is normalised out below.
    for (name, rename) in [
        (
            "kustomization.yml",
            ("newName: replaced", "newName: index.repo.fake/updated"),
        ),
        (
            "marked.yaml",
            (
                "image: image:v1.0.1 # {\"$imagepolicy\": \"automation-ns:policy\"}",
                "image: index.repo.fake/updated:v1.0.1 # {\"$imagepolicy\": \"automation-ns:policy\"}",
            ),
        ),
    ] {
        let orig = std::fs::read_to_string(d.join(format!("{pre}original__{name}"))).unwrap();
        let expected = std::fs::read_to_string(d.join(format!("{pre}expected__{name}"))).unwrap();
        let docs = Doc::parse_all(&orig, name).unwrap();
        let mut text = orig.clone();
        for kind in locations(&orig, &docs)
            .into_iter()
            .filter(|k| matches!(k, LocationKind::ImagePolicy(_)))
        {
            let want = manifest::read(&expected, &Location::new(name, kind.clone())).unwrap();
            text = manifest::set(&text, &Location::new(name, kind.clone()), &want)
                .unwrap()
                .text;
        }
        assert_eq!(text.replace(rename.0, rename.1), expected, "{name}");
    }
}
