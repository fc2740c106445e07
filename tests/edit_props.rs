//! Property test of the editor: for generated YAML (and `../shared/corpus` files when
//! present) with mutations — CRLF, BOM, comments and setter-like text in odd places,
//! quoting styles, anchors and aliases, merge keys, flow style, several documents,
//! duplicate keys, non-ASCII — an edit is either refused as bad input (exit 2, naming
//! the file) or changes exactly the intended value, as read by two parsers that are
//! not the editor's own verification (yaml-rust2's loader and serde-saphyr into JSON).
//!
//! CI runs a short pass (`PROPTEST_CASES`, default 256); `bench/run.sh` runs a long
//! one and prints the number of cases tried.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use gitops_flow::manifest::{self, Location, LocationKind};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Every scalar leaf of a document as (path, text), aliases and merges resolved by the parser.
fn leaves_json(v: &serde_json::Value, path: String, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                leaves_json(v, format!("{path}/{k}"), out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                leaves_json(v, format!("{path}/{i}"), out);
            }
        }
        other => out.push((path, other.to_string())),
    }
}

fn leaves_rust2(v: &yaml_rust2::Yaml, path: String, out: &mut Vec<(String, String)>) {
    use yaml_rust2::Yaml;
    match v {
        Yaml::Hash(h) => {
            for (k, v) in h {
                let k = match k {
                    Yaml::String(s) => s.clone(),
                    other => format!("{other:?}"),
                };
                leaves_rust2(v, format!("{path}/{k}"), out);
            }
        }
        Yaml::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                leaves_rust2(v, format!("{path}/{i}"), out);
            }
        }
        Yaml::String(s) => out.push((path, format!("{s:?}"))),
        other => out.push((path, format!("{other:?}"))),
    }
}

type Reader = fn(&str) -> Option<Vec<(String, String)>>;

fn saphyr(text: &str) -> Option<Vec<(String, String)>> {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(text).ok()?;
    let mut out = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        leaves_json(d, format!("#{i}"), &mut out);
    }
    Some(out)
}

fn rust2(text: &str) -> Option<Vec<(String, String)>> {
    let docs = yaml_rust2::YamlLoader::load_from_str(text.trim_start_matches('\u{feff}')).ok()?;
    let mut out = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        leaves_rust2(d, format!("#{i}"), &mut out);
    }
    Some(out)
}

/// The leaves that differ between two readings (added, removed or changed).
fn changed(a: &[(String, String)], b: &[(String, String)]) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for (p, v) in b {
        if a.iter().find(|(q, _)| q == p).map(|(_, w)| w) != Some(v) {
            out.push((p.clone(), Some(v.clone())));
        }
    }
    for (p, _) in a {
        if !b.iter().any(|(q, _)| q == p) {
            out.push((p.clone(), None));
        }
    }
    out
}

/// The property: refused as input error, or exactly the intended leaf changed to `version`
/// (`suffix` is the path suffix of the intended leaf, e.g. `/image/tag`).
fn check_edit(text: &str, loc: &Location, version: &str, suffix: &str) -> Result<(), TestCaseError> {
    match manifest::set(text, loc, version) {
        Err(e) => {
            prop_assert_eq!(e.exit_code(), 2, "refusals are input errors: {}", e);
            prop_assert!(
                e.place().is_some_and(|p| p.file == loc.file),
                "the refusal names the file: {}",
                e
            );
        }
        Ok(ed) if !ed.changed => prop_assert_eq!(&ed.text, text),
        Ok(ed) => {
            for (name, read) in [("serde-saphyr", saphyr as Reader), ("yaml-rust2", rust2 as Reader)] {
                let (Some(before), after) = (read(text), read(&ed.text)) else {
                    continue; // this reader cannot read the original: nothing to compare
                };
                let after =
                    after.ok_or_else(|| TestCaseError::fail(format!("{name} cannot read the edit:\n{}", ed.text)))?;
                let diff = changed(&before, &after);
                prop_assert!(!diff.is_empty(), "{name}: nothing changed:\n{}", ed.text);
                for (path, value) in &diff {
                    prop_assert!(
                        path.ends_with(suffix) && value.as_deref() == Some(format!("{version:?}").as_str()),
                        "{name}: {path} became {value:?}, only {suffix} may change\n--- before\n{text}\n--- after\n{}",
                        ed.text
                    );
                }
                // One place only: the location resolves to exactly one value.
                prop_assert!(diff.len() == 1, "{name}: several places changed: {diff:?}\n{}", ed.text);
            }
        }
    }
    Ok(())
}

fn arb_version() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,2}\\.[0-9]{1,2}(\\.[0-9]{1,2})?",
        "v[0-9]\\.[0-9]+(-rc\\.[0-9])?",
        Just("1.10".to_string()),
        Just("0b101".to_string()),
        Just("1_000".to_string()),
        Just("2024-01-15".to_string()),
        Just("y".to_string()),
        Just("on".to_string()),
        Just("1e3".to_string()),
        "[0-9a-f]{7}",
    ]
}

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,8}",
        Just("ünï".to_string()),
        Just("a.b".to_string()),
        Just("x y".to_string())
    ]
}

/// A value written in a random style (plain, quoted, flow).
fn arb_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,6}",
        "'[a-z #]{0,8}'",
        "\"[a-z #:]{0,8}\"",
        Just("'echo # {\"$imagepolicy\": \"ns:app\"}'".to_string()),
        Just("[a, 'b', 1]".to_string()),
        Just("{k: v}".to_string()),
        Just("日本".to_string()),
    ]
}

/// One generated document holding `image.tag` (maybe twice, maybe through an anchor).
#[derive(Debug, Clone)]
struct Gen {
    before: Vec<(String, String)>,
    after: Vec<(String, String)>,
    old: String,
    style: u8,
    flow: bool,
    comment: u8,
    anchor: u8,
    duplicate: bool,
    docs: u8,
    crlf: bool,
    bom: bool,
}

fn arb_gen() -> impl Strategy<Value = Gen> {
    (
        proptest::collection::vec((arb_key(), arb_scalar()), 0..4),
        proptest::collection::vec((arb_key(), arb_scalar()), 0..4),
        arb_version(),
        0u8..3,
        any::<bool>(),
        0u8..4,
        0u8..4,
        prop::bool::weighted(0.15),
        1u8..4,
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(before, after, old, style, flow, comment, anchor, duplicate, docs, crlf, bom)| Gen {
                before,
                after,
                old,
                style,
                flow,
                comment,
                anchor,
                duplicate,
                docs,
                crlf,
                bom,
            },
        )
}

fn render(g: &Gen) -> String {
    let quote = |v: &str| match g.style {
        0 => v.to_string(),
        1 => format!("'{v}'"),
        _ => format!("\"{v}\""),
    };
    let comment = match g.comment {
        0 => "",
        1 => " # the tag",
        2 => " # {\"$imagepolicy\": \"ns:app:tag\"}",
        _ => " # pinned, was {\"$imagepolicy\": \"ns:app\"}",
    };
    let mut doc = String::new();
    for (k, v) in &g.before {
        doc.push_str(&format!("\"{k}\": {v}\n"));
    }
    let anchor = if g.anchor == 1 { " &img" } else { "" };
    if g.flow {
        doc.push_str(&format!(
            "image:{anchor} {{repository: app, tag: {}}}{comment}\n",
            quote(&g.old)
        ));
    } else {
        doc.push_str(&format!(
            "image:{anchor}\n  repository: app\n  tag: {}{comment}\n",
            quote(&g.old)
        ));
        if g.duplicate {
            doc.push_str("  tag: 0.0.1\n");
        }
    }
    match g.anchor {
        1 => doc.push_str("other: *img\n"),
        2 => doc.push_str("base: &b {tag: 9.9.9}\nmerged:\n  <<: *b\n"),
        _ => {}
    }
    for (k, v) in &g.after {
        doc.push_str(&format!("\"{k}\": {v}\n"));
    }
    let mut text = String::new();
    for i in 0..g.docs {
        if i > 0 {
            text.push_str("---\n");
        }
        if i == 0 {
            text.push_str(&doc);
        } else {
            text.push_str("kind: Other\nspec: {a: 1}\n");
        }
    }
    if g.crlf {
        text = text.replace('\n', "\r\n");
    }
    if g.bom {
        text.insert(0, '\u{feff}');
    }
    text
}

static CASES: AtomicUsize = AtomicUsize::new(0);

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256)
}

#[test]
fn generated_yaml_is_edited_exactly_or_refused() {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(arb_gen(), arb_version()), |(g, version)| {
            CASES.fetch_add(1, Ordering::Relaxed);
            let text = render(&g);
            let loc = Location::new("gen.yaml", LocationKind::key("image.tag"));
            check_edit(&text, &loc, &version, "/image/tag")?;
            // The same file through a Flux setter when the generated comment is one.
            if g.comment == 2 {
                let loc = Location::new("gen.yaml", LocationKind::ImagePolicy("ns:app".into()));
                check_edit(&text, &loc, &version, "/image/tag")?;
            }
            Ok(())
        })
        .unwrap();
    eprintln!(
        "edit properties: {} generated cases tried",
        CASES.load(Ordering::Relaxed)
    );
}

fn corpus_files() -> Option<Vec<PathBuf>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if !root.is_dir() {
        return None;
    }
    let mut out = Vec::new();
    for d in std::fs::read_dir(&root).ok()?.flatten() {
        if d.path().is_dir() {
            for f in std::fs::read_dir(d.path()).ok()?.flatten() {
                out.push(f.path());
            }
        }
    }
    out.sort();
    Some(out)
}

#[test]
fn corpus_files_with_mutations_are_edited_exactly_or_refused() {
    let Some(files) = corpus_files() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("../shared/corpus is absent but CI=true: the corpus property test cannot run");
        }
        eprintln!("SKIPPED: ../shared/corpus is absent");
        return;
    };
    // Pick files with a plain `image.tag`-like leaf to aim at.
    let texts: Vec<(String, String, String)> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).ok()?;
            let docs = manifest::Doc::parse_all(&text, "c.yaml").ok()?;
            let (path, _) = docs.first()?.root.leaves().into_iter().find(|(p, s)| {
                (p.ends_with(".tag") || p == "tag")
                    && s.style == manifest::Style::Plain
                    && p.split('.')
                        .all(|k| k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            })?;
            let suffix = format!("/{}", path.replace('.', "/"));
            Some((text, path, suffix))
        })
        .collect();
    assert!(!texts.is_empty());
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let n = texts.len();
    runner
        .run(&(0..n, arb_version(), 0u8..6), |(i, version, mutation)| {
            CASES.fetch_add(1, Ordering::Relaxed);
            let (text, path, suffix) = &texts[i];
            let text = match mutation {
                0 => text.clone(),
                1 => text.replace('\n', "\r\n"),
                2 => format!("\u{feff}{text}"),
                3 => {
                    format!("# {{\"$imagepolicy\": \"ns:app\"}}\nnote: 'x # {{\"$imagepolicy\": \"ns:app\"}}'\n{text}")
                }
                4 => format!("{text}\n---\nkind: Extra\nspec: {{a: [1, 2]}}\n"),
                _ => text.trim_end().to_string(),
            };
            let loc = Location::new("c.yaml", LocationKind::key(path.clone()));
            check_edit(&text, &loc, &version, suffix)
        })
        .unwrap();
    eprintln!("edit properties: {} corpus cases tried", CASES.load(Ordering::Relaxed));
}
