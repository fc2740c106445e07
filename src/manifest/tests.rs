use super::*;

fn key(k: &str) -> LocationKind {
    LocationKind::key(k)
}

fn at(file: &str, kind: &LocationKind) -> Location {
    Location::new(file, kind.clone())
}

fn set_ok(text: &str, kind: &LocationKind, v: &str) -> String {
    set(text, &at("f.yaml", kind), v).unwrap_or_else(|e| panic!("{e}")).text
}

#[test]
fn plain_value_keeps_comments_and_layout() {
    let t =
        "# top\nimage:\n  repository: ghcr.io/acme/app   # repo\n  tag: 1.2.3 # the tag\n  pullPolicy: IfNotPresent\n";
    assert_eq!(
        set_ok(t, &key("image.tag"), "1.3.0"),
        "# top\nimage:\n  repository: ghcr.io/acme/app   # repo\n  tag: 1.3.0 # the tag\n  pullPolicy: IfNotPresent\n"
    );
}

#[test]
fn quoting_style_is_kept_and_strings_stay_strings() {
    assert_eq!(set_ok("tag: '1.0'\n", &key("tag"), "1.10"), "tag: '1.10'\n");
    assert_eq!(set_ok("tag: \"3.24\"\n", &key("tag"), "3.25"), "tag: \"3.25\"\n");
    // An unquoted float-like old value: the new one is quoted so it reads back as a string.
    assert_eq!(set_ok("tag: 0.1\n", &key("tag"), "1.10"), "tag: \"1.10\"\n");
    assert_eq!(set_ok("tag: v1\n", &key("tag"), "v2"), "tag: v2\n");
}

#[test]
fn crlf_bom_and_missing_final_newline() {
    let t = "\u{feff}a: 1\r\nimage:\r\n  tag: 1.2.3\r\nb: 2";
    assert_eq!(
        set_ok(t, &key("image.tag"), "2.0.0"),
        "\u{feff}a: 1\r\nimage:\r\n  tag: 2.0.0\r\nb: 2"
    );
    assert_eq!(read(t, &at("f", &key("image.tag"))).unwrap(), "1.2.3");
}

#[test]
fn whole_image_reference_gets_only_its_tag_replaced() {
    let d = "a".repeat(64);
    let t = format!("spec:\n  containers:\n    - name: app\n      image: ghcr.io/acme/app:1.2.3@sha256:{d}\n");
    let out = set_ok(&t, &key("spec.containers[0].image"), "1.3.0");
    assert_eq!(
        out,
        "spec:\n  containers:\n    - name: app\n      image: ghcr.io/acme/app:1.3.0\n"
    );
    assert_eq!(
        read(&t, &at("f", &key("spec.containers[0].image"))).unwrap(),
        format!("1.2.3@sha256:{d}")
    );
}

#[test]
fn multi_document_files_edit_only_the_document_with_the_path() {
    let t = "kind: Service\nmetadata: {name: x}\n---\nkind: Deployment\nimage:\n  tag: \"1\" # keep\n...\n---\nkind: Other\n";
    assert_eq!(
        set_ok(t, &key("image.tag"), "2"),
        "kind: Service\nmetadata: {name: x}\n---\nkind: Deployment\nimage:\n  tag: \"2\" # keep\n...\n---\nkind: Other\n"
    );
}

#[test]
fn anchors_are_kept_and_aliases_refused() {
    let t = "base: &image\n  repository: app\n  tag: 1.0.0\nother:\n  image: {repository: app}\n";
    assert_eq!(
        set_ok(t, &key("base.tag"), "1.1.0"),
        "base: &image\n  repository: app\n  tag: 1.1.0\nother:\n  image: {repository: app}\n"
    );
    let e = set("a: &v 1.0.0\nb: *v\n", &at("f.yaml", &key("b")), "2").unwrap_err();
    assert!(e.to_string().contains("alias"), "{e}");
    assert_eq!(e.exit_code(), 2);
    // An anchored scalar that an alias reuses is refused: the alias would change too.
    let e = set("a: &v 1.0.0\nb: *v\n", &at("f.yaml", &key("a")), "2.0.0").unwrap_err();
    assert!(e.to_string().contains("reused at line 2"), "{e}");
}

#[test]
fn block_scalars_missing_keys_and_broken_yaml_are_refused() {
    let e = set("tag: |\n  1.0\n", &at("f.yaml", &key("tag")), "2").unwrap_err();
    assert!(e.to_string().contains("block scalar"), "{e}");
    assert_eq!(e.place().unwrap().line, Some(1));
    let e = set("image:\n  repo: x\n", &at("f.yaml", &key("image.tag")), "2").unwrap_err();
    assert!(e.to_string().contains("not found"), "{e}");
    let e = set("a: [1\nb: 2\n", &at("f.yaml", &key("a")), "2").unwrap_err();
    assert!(e.to_string().contains("not valid YAML"), "{e}");
    assert!(e.place().unwrap().line.is_some());
    let e = set("tag: 1.0\n", &at("f.yaml", &key("tag")), "1.0\nx: 1").unwrap_err();
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn multi_line_plain_scalars_are_refused() {
    let e = set("tag: 1.0\n  continued\n", &at("f.yaml", &key("tag")), "2").unwrap_err();
    assert!(e.to_string().contains("several lines"), "{e}");
}

#[test]
fn flow_style_values() {
    assert_eq!(
        set_ok("image: {repository: app, tag: 1.0.0}\n", &key("image.tag"), "2.0.0"),
        "image: {repository: app, tag: 2.0.0}\n"
    );
    assert_eq!(
        set_ok("tags: [1.0.0, 'x']\n", &key("tags[0]"), "2.0.0"),
        "tags: [2.0.0, 'x']\n"
    );
}

#[test]
fn merge_keys_tabs_in_comments_and_str_tags() {
    let t = "defaults: &d\n  pull: Always\nimage:\n  <<: *d\n  tag: 1.0\t# tab comment\n";
    assert_eq!(
        set_ok(t, &key("image.tag"), "1.1.0"),
        "defaults: &d\n  pull: Always\nimage:\n  <<: *d\n  tag: 1.1.0\t# tab comment\n"
    );
    assert_eq!(set_ok("tag: !!str 1.0\n", &key("tag"), "1.1"), "tag: !!str \"1.1\"\n");
    let e = set("tag: !custom 1.0\n", &at("f.yaml", &key("tag")), "1.1").unwrap_err();
    assert!(e.to_string().contains("tag"), "{e}");
}

#[test]
fn chart_app_version() {
    let t = "apiVersion: v2\nname: payments\nversion: 0.1.0\nappVersion: \"1.0.0\"\n";
    let out = set_ok(t, &LocationKind::ChartAppVersion, "1.1.0");
    assert_eq!(
        out,
        "apiVersion: v2\nname: payments\nversion: 0.1.0\nappVersion: \"1.1.0\"\n"
    );
    let again = set(&out, &at("f", &LocationKind::ChartAppVersion), "1.1.0").unwrap();
    assert!(!again.changed);
    assert_eq!(again.old_version, "1.1.0");
    // Image references inside annotations' block scalars are text, not keys.
    let t = "appVersion: 1.0.0\nannotations:\n  images: |\n    - image: app:1.0.0\n";
    assert_eq!(
        set_ok(t, &LocationKind::ChartAppVersion, "1.0.1"),
        "appVersion: 1.0.1\nannotations:\n  images: |\n    - image: app:1.0.0\n"
    );
}

#[test]
fn flux_markers() {
    let t = "spec:\n  image: ghcr.io/acme/app:1.0.0 # {\"$imagepolicy\": \"flux-system:app\"}\n  tag: 1.0.0 # {\"$imagepolicy\": \"flux-system:app:tag\"}\n  repo: ghcr.io/acme/app # {\"$imagepolicy\": \"flux-system:app:name\"}\n  other: x:1 # {\"$imagepolicy\": \"flux-system:other\"}\n";
    let out = set_ok(t, &LocationKind::ImagePolicy("flux-system:app".into()), "1.1.0");
    assert_eq!(
        out,
        t.replace("app:1.0.0", "app:1.1.0").replace("tag: 1.0.0", "tag: 1.1.0")
    );
    assert_eq!(
        read(t, &at("f", &LocationKind::ImagePolicy("flux-system:app".into()))).unwrap(),
        "1.0.0"
    );
    let e = set(t, &at("f.yaml", &LocationKind::ImagePolicy("nope:x".into())), "1").unwrap_err();
    assert!(e.to_string().contains("setter comment"), "{e}");
}

#[test]
fn kustomize_images() {
    let t = "resources:\n- deployment.yaml\nimages:\n- name: ghcr.io/acme/api\n  newTag: 1.0.0\n- name: nginx\n  newName: my/nginx\n";
    assert_eq!(
        set_ok(t, &LocationKind::KustomizeImage("ghcr.io/acme/api".into()), "1.2.0"),
        t.replace("newTag: 1.0.0", "newTag: 1.2.0")
    );
    // No newTag yet: added in the entry's own indentation and line ending.
    let out = set_ok(t, &LocationKind::KustomizeImage("nginx".into()), "1.25");
    assert_eq!(
        out,
        "resources:\n- deployment.yaml\nimages:\n- name: ghcr.io/acme/api\n  newTag: 1.0.0\n- name: nginx\n  newTag: \"1.25\"\n  newName: my/nginx\n"
    );
    let t = "images:\r\n  - name: api\r\n";
    assert_eq!(
        set_ok(t, &LocationKind::KustomizeImage("api".into()), "2.0.0"),
        "images:\r\n  - name: api\r\n    newTag: 2.0.0\r\n"
    );
    let t = "images:\n  - name: api";
    assert_eq!(
        set_ok(t, &LocationKind::KustomizeImage("api".into()), "2.0.0"),
        "images:\n  - name: api\n    newTag: 2.0.0"
    );
}

#[test]
fn the_same_value_several_times() {
    let t = "a:\n  image:\n    tag: 1.0 # x\nb:\n  image:\n    tag: 1.0\n";
    assert_eq!(
        set_ok(t, &key("b.image.tag"), "2.0.1"),
        "a:\n  image:\n    tag: 1.0 # x\nb:\n  image:\n    tag: 2.0.1\n"
    );
}

#[test]
fn go_templates_and_non_ascii_before_the_value() {
    let t = "# é ü 日本\nname: 'ünïcödé'\nimage:\n  tag: '{{ .head_sha }}'\n";
    assert_eq!(
        set_ok(t, &key("image.tag"), "abc123"),
        "# é ü 日本\nname: 'ünïcödé'\nimage:\n  tag: 'abc123'\n"
    );
    let t = "desc: |\n  ÿ long é text\nimage: {tag: 1.0.0}\n";
    assert_eq!(
        set_ok(t, &key("image.tag"), "1.0.1"),
        "desc: |\n  ÿ long é text\nimage: {tag: 1.0.1}\n"
    );
}

#[test]
fn key_paths() {
    assert_eq!(KeyPath::parse("a.b[0].c").unwrap().0.len(), 4);
    assert_eq!(
        KeyPath::parse("a[1][2]").unwrap().0,
        vec![Seg::Key("a".into()), Seg::Index(1), Seg::Index(2)]
    );
    for bad in ["", "a..b", "a[", "a[x]", "a[0]b"] {
        assert!(KeyPath::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn digests_are_kept_in_step_with_tags() {
    let d = "c".repeat(64);
    let t = "images:\n- name: api\n  newTag: 1.0.0 # {\"$imagepolicy\": \"ns:api:tag\"}\n  digest: sha256:0000 # {\"$imagepolicy\": \"ns:api:digest\"}\n";
    // A pinned digest with a version without one would leave the old image deployed.
    let e = set(t, &at("k.yaml", &LocationKind::KustomizeImage("api".into())), "1.1.0").unwrap_err();
    assert!(e.to_string().contains("pins a digest"), "{e}");
    assert_eq!(e.exit_code(), 2);
    let v = format!("1.1.0@sha256:{d}");
    let out = set_ok(t, &LocationKind::KustomizeImage("api".into()), &v);
    assert_eq!(
        out,
        t.replace("1.0.0", "1.1.0")
            .replace("sha256:0000", &format!("sha256:{d}"))
    );
    assert_eq!(
        read(&out, &at("k", &LocationKind::KustomizeImage("api".into()))).unwrap(),
        v
    );
    let out2 = set_ok(t, &LocationKind::ImagePolicy("ns:api".into()), &v);
    assert_eq!(out2, out);
    assert_eq!(
        read(&out2, &at("k", &LocationKind::ImagePolicy("ns:api".into()))).unwrap(),
        v
    );
    // A version with a digest in a plain version key stays one value, read back whole.
    assert_eq!(
        read(&set_ok("tag: 1.0\n", &key("tag"), &v), &at("f", &key("tag"))).unwrap(),
        v
    );
}

// ---- Issue 8: every row is the whole file after the edit, or the refusal. ----

use expect_test::{Expect, expect};

fn outcome(text: &str, loc: &Location, v: &str) -> String {
    match set(text, loc, v) {
        Ok(e) => format!("changed={} previous={}\n{}", e.changed, e.old_version, e.text),
        Err(e) => format!(
            "exit {} at line {:?}: {e}",
            e.exit_code(),
            e.place().and_then(|p| p.line)
        ),
    }
}

fn check(text: &str, kind: LocationKind, v: &str, want: Expect) {
    want.assert_eq(&outcome(text, &at("f.yaml", &kind), v));
}

const TWO_RELEASES: &str = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: payments\nspec:\n  values:\n    image:\n      tag: 1.0.0\n---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: orders\nspec:\n  values:\n    image:\n      tag: 7.0.0\n";

#[test]
fn row1_a_path_in_several_documents_is_refused_unless_one_is_selected() {
    check(
        TWO_RELEASES,
        key("spec.values.image.tag"),
        "1.1.0",
        expect![
            "exit 2 at line Some(9): f.yaml: `spec.values.image.tag` is in 2 documents: HelmRelease/payments (line 1), HelmRelease/orders (line 9); an edit changes exactly one place, so say which with `document: {kind: ..., name: ...}` on this location in gitops-flow.yaml"
        ],
    );
    let loc = Location {
        document: Some(DocSelector {
            kind: Some("HelmRelease".into()),
            name: Some("payments".into()),
        }),
        ..at("f.yaml", &key("spec.values.image.tag"))
    };
    expect![[r#"
        changed=true previous=1.0.0
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata:
          name: payments
        spec:
          values:
            image:
              tag: 1.1.0
        ---
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata:
          name: orders
        spec:
          values:
            image:
              tag: 7.0.0
    "#]]
    .assert_eq(&outcome(TWO_RELEASES, &loc, "1.1.0"));
    let loc = Location {
        document: Some(DocSelector {
            kind: None,
            name: Some("nope".into()),
        }),
        ..at("f.yaml", &key("spec.values.image.tag"))
    };
    expect!["exit 2 at line None: f.yaml: no document is name nope; the documents are HelmRelease/payments (line 1), HelmRelease/orders (line 9); fix `document:` in gitops-flow.yaml"].assert_eq(&outcome(TWO_RELEASES, &loc, "1.1.0"));
}

#[test]
fn row2_values_inside_reused_anchors_are_refused() {
    check(
        "dev: &d {image: {tag: 1.0.0}}\nprod: *d\n",
        key("dev.image.tag"),
        "1.1.0",
        expect![
            "exit 2 at line Some(1): f.yaml:1: the value is inside the anchored node `&d` that is reused at line 2 (`*d`); editing it would change those places too — give each its own value (replace the alias with a copy) or edit by hand"
        ],
    );
    check(
        "dev: &d\n  image:\n    tag: 1.0.0\nprod:\n  <<: *d\n",
        key("dev.image.tag"),
        "1.1.0",
        expect![
            "exit 2 at line Some(3): f.yaml:3: the value is inside the anchored node `&d` that is reused at line 5 (`<<: *d`); editing it would change those places too — give each its own value (replace the alias with a copy) or edit by hand"
        ],
    );
    check(
        "a: &v 1.0.0\nb: *v\n",
        key("a"),
        "2.0.0",
        expect![
            "exit 2 at line Some(1): f.yaml:1: the value is inside the anchored node `&v` that is reused at line 2 (`*v`); editing it would change those places too — give each its own value (replace the alias with a copy) or edit by hand"
        ],
    );
    // An anchor nobody reuses is edited, anchor kept.
    check(
        "a: &v 1.0.0\nb: 1.0.0\n",
        key("a"),
        "2.0.0",
        expect![[r#"
        changed=true previous=1.0.0
        a: &v 2.0.0
        b: 1.0.0
    "#]],
    );
}

#[test]
fn row3_paths_through_aliases_and_merge_keys_name_the_anchor() {
    check(
        "attrs: &attrs\n  tag: 1.0.0\nimage:\n  attributes: *attrs\n",
        key("image.attributes.tag"),
        "1.1.0",
        expect![
            "exit 2 at line Some(4): f.yaml:4: `image.attributes` takes its value from the alias `*attrs` (line 4); the value lives at line 2 inside the anchor `&attrs` (line 2); gitops-flow does not edit through aliases or merge keys — point `key:` at the anchored value (if nothing else reuses it) or replace the alias with a copy"
        ],
    );
    check(
        "base: &b\n  tag: 1.0.0\nimage:\n  <<: *b\n  pull: Always\n",
        key("image.tag"),
        "1.1.0",
        expect![
            "exit 2 at line Some(4): f.yaml:4: `image` takes its value from the alias `*b` (line 4); the value lives at line 2 inside the anchor `&b` (line 2); gitops-flow does not edit through aliases or merge keys — point `key:` at the anchored value (if nothing else reuses it) or replace the alias with a copy"
        ],
    );
    check(
        "base: &b\n  tag: 1.0.0\nimage:\n  <<: [*b]\n",
        key("image.tag"),
        "1.1.0",
        expect![
            "exit 2 at line Some(4): f.yaml:4: `image` takes its value from the alias `*b` (line 4); the value lives at line 2 inside the anchor `&b` (line 2); gitops-flow does not edit through aliases or merge keys — point `key:` at the anchored value (if nothing else reuses it) or replace the alias with a copy"
        ],
    );
}

#[test]
fn row4_duplicate_keys_on_the_path_are_refused() {
    check(
        "image: {tag: 1}\nimage: {tag: 2}\n",
        key("image.tag"),
        "3.0.0",
        expect![
            "exit 2 at line Some(2): f.yaml:2: the key `image` is written twice (lines 1 and 2); Helm reads the last one and other tools the first — remove one"
        ],
    );
    check(
        "image:\n  tag: 1\n  tag: 2\n",
        key("image.tag"),
        "3.0.0",
        expect![
            "exit 2 at line Some(3): f.yaml:3: the key `image.tag` is written twice (lines 2 and 3); Helm reads the last one and other tools the first — remove one"
        ],
    );
    // Duplicates elsewhere do not matter.
    check(
        "x: 1\nx: 2\nimage:\n  tag: 1.0.0\n",
        key("image.tag"),
        "3.0.0",
        expect![[r#"
        changed=true previous=1.0.0
        x: 1
        x: 2
        image:
          tag: 3.0.0
    "#]],
    );
}

#[test]
fn row5_values_any_reader_would_type_are_quoted() {
    let mut out = String::new();
    for v in [
        "0b101",
        "1_000",
        "2024_01_15",
        "0x_1",
        "0o17",
        "y",
        "n",
        "1.10",
        "2024-01-15",
        "1.2.3",
        "v1",
    ] {
        let e = set("tag: x\n", &at("f.yaml", &key("tag")), v);
        out.push_str(&e.map_or_else(|e| e.to_string(), |e| e.text));
    }
    expect![[r#"
        tag: "0b101"
        tag: "1_000"
        tag: "2024_01_15"
        tag: "0x_1"
        tag: "0o17"
        tag: "y"
        tag: "n"
        tag: "1.10"
        tag: "2024-01-15"
        tag: 1.2.3
        tag: v1
    "#]]
    .assert_eq(&out);
}

#[test]
fn row6_kustomize_images_keep_kustomizes_own_form() {
    let d = "a".repeat(64);
    let v = format!("v2@sha256:{d}");
    let pinned = "images:\n- name: app\n  digest: sha256:0000\n";
    check(
        pinned,
        LocationKind::KustomizeImage("app".into()),
        &v,
        expect![[r#"
        changed=true previous=@sha256:0000
        images:
        - name: app
          newTag: v2
          digest: sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
    "#]],
    );
    let once = set(pinned, &at("f.yaml", &LocationKind::KustomizeImage("app".into())), &v).unwrap();
    let twice = set(
        &once.text,
        &at("f.yaml", &LocationKind::KustomizeImage("app".into())),
        &v,
    )
    .unwrap();
    assert!(!twice.changed, "the second run is a no-op:\n{}", twice.text);
    assert_eq!(
        read(&once.text, &at("f.yaml", &LocationKind::KustomizeImage("app".into()))).unwrap(),
        v
    );
    // A digest-carrying version on an entry without `digest:` adds it.
    check(
        "images:\n- name: app\n  newTag: v1\n  newName: reg/app\n",
        LocationKind::KustomizeImage("app".into()),
        &v,
        expect![[r#"
        changed=true previous=v1
        images:
        - name: app
          newTag: v2
          digest: sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
          newName: reg/app
    "#]],
    );
    // A digest inside newTag (not kustomize's form) is split.
    check(
        &format!("images:\n- name: app\n  newTag: v1@sha256:{}\n", "b".repeat(64)),
        LocationKind::KustomizeImage("app".into()),
        &v,
        expect![[r#"
        changed=true previous=v1@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
        images:
        - name: app
          newTag: v2
          digest: sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
    "#]],
    );
    // Listed twice: refused.
    check(
        "images:\n- name: app\n  newTag: v1\n- name: app\n  newTag: v2\n",
        LocationKind::KustomizeImage("app".into()),
        "v3",
        expect![
            "exit 2 at line Some(4): f.yaml:4: `images:` lists `name: app` 2 times (lines 2, 4); kustomize applies only one — remove the others"
        ],
    );
}

#[test]
fn row7_inserted_lines_use_the_files_own_line_ending() {
    // Debug-formatted so the line endings show.
    let kind = LocationKind::KustomizeImage("app".into());
    let out = set("images:\r\n- name: app", &at("f.yaml", &kind), "1.2.0")
        .unwrap()
        .text;
    expect![[r#""images:\r\n- name: app\r\n  newTag: 1.2.0""#]].assert_eq(&format!("{out:?}"));
    let d = format!("1.2.0@sha256:{}", "d".repeat(64));
    let out = set("images:\r\n- name: app\r\n  newName: x", &at("f.yaml", &kind), &d)
        .unwrap()
        .text;
    expect![[r#""images:\r\n- name: app\r\n  newTag: 1.2.0\r\n  digest: sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd\r\n  newName: x""#]].assert_eq(&format!("{out:?}"));
}

#[test]
fn row8_image_names_are_never_replaced() {
    let t = "spec:\n  containers:\n  - name: web\n    image: nginx\n";
    check(
        t,
        key("spec.containers[0].image"),
        "1.25.3",
        expect![
            "exit 2 at line Some(4): f.yaml:4: `spec.containers[0].image` holds `nginx`, which may be an image name or a version; say which with `value: image` (then `nginx` becomes `nginx:<version>`) or `value: version` on this location in gitops-flow.yaml"
        ],
    );
    let image = LocationKind::Key {
        path: "spec.containers[0].image".into(),
        form: ValueForm::Image,
    };
    check(
        t,
        image.clone(),
        "1.25.3",
        expect![[r#"
        changed=true previous=
        spec:
          containers:
          - name: web
            image: nginx:1.25.3
    "#]],
    );
    let d = "c".repeat(64);
    let pinned = format!("spec:\n  containers:\n  - image: nginx@sha256:{}\n", "0".repeat(64));
    check(
        &pinned,
        key("spec.containers[0].image"),
        "1.25.3",
        expect![
            "exit 2 at line Some(3): f.yaml:3: `spec.containers[0].image` holds `nginx@sha256:0000000000000000000000000000000000000000000000000000000000000000`, which may be an image name or a version; say which with `value: image` (then `nginx` becomes `nginx:<version>`) or `value: version` on this location in gitops-flow.yaml"
        ],
    );
    check(
        &pinned,
        image.clone(),
        &format!("1.25.3@sha256:{d}"),
        expect![[r#"
        changed=true previous=@sha256:0000000000000000000000000000000000000000000000000000000000000000
        spec:
          containers:
          - image: nginx:1.25.3@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc
    "#]],
    );
    check(
        "image: localhost:5000/web:1.0\n",
        key("image"),
        "1.1",
        expect![[r#"
        changed=true previous=1.0
        image: localhost:5000/web:1.1
    "#]],
    );
    check(
        "image: localhost:5000/web\n",
        LocationKind::Key {
            path: "image".into(),
            form: ValueForm::Image,
        },
        "1.1",
        expect![[r#"
        changed=true previous=
        image: localhost:5000/web:1.1
    "#]],
    );
    // `value: version` writes the whole value, as asked.
    check(
        "image: nginx\n",
        LocationKind::Key {
            path: "image".into(),
            form: ValueForm::Version,
        },
        "1.1",
        expect![[r#"
        changed=true previous=nginx
        image: "1.1"
    "#]],
    );
}

#[test]
fn row9_to_11_a_marker_is_a_setter_comment_and_nothing_else() {
    let policy = || LocationKind::ImagePolicy("ns:app".into());
    // Inside a quoted string: content.
    check(
        "cmd: 'echo # {\"$imagepolicy\": \"ns:app\"}'\nimage: app:1.0.0 # {\"$imagepolicy\": \"ns:app\"}\n",
        policy(),
        "1.1.0",
        expect![[r#"
        changed=true previous=1.0.0
        cmd: 'echo # {"$imagepolicy": "ns:app"}'
        image: app:1.1.0 # {"$imagepolicy": "ns:app"}
    "#]],
    );
    check(
        "cmd: 'echo # {\"$imagepolicy\": \"ns:app\"}'\n",
        policy(),
        "1.1.0",
        expect![[
            r#"exit 2 at line None: no `# {"$imagepolicy": "ns:app"}` setter comment in f.yaml; add the comment after the value it sets, on the same line, or fix `imagepolicy:`"#
        ]],
    );
    // Inside a block scalar, and a commented-out setter line: ignored, the real one is set.
    check(
        "patch: |\n  image: app:1.0.0 # {\"$imagepolicy\": \"ns:app\"}\n# image: app:0.9.0 # {\"$imagepolicy\": \"ns:app\"}\nimage: app:1.0.0 # {\"$imagepolicy\": \"ns:app\"}\n",
        policy(),
        "1.1.0",
        expect![[r#"
            changed=true previous=1.0.0
            patch: |
              image: app:1.0.0 # {"$imagepolicy": "ns:app"}
            # image: app:0.9.0 # {"$imagepolicy": "ns:app"}
            image: app:1.1.0 # {"$imagepolicy": "ns:app"}
        "#]],
    );
    // A prose comment that mentions a marker is not a setter.
    check(
        "image: app:1.0.0 # pinned, was {\"$imagepolicy\": \"ns:app\"}\n",
        policy(),
        "1.1.0",
        expect![[
            r#"exit 2 at line None: no `# {"$imagepolicy": "ns:app"}` setter comment in f.yaml; add the comment after the value it sets, on the same line, or fix `imagepolicy:`"#
        ]],
    );
}

#[test]
fn row12_keys_with_dots() {
    let t = "metadata:\n  labels:\n    app.kubernetes.io/version: 1.0.0\n    example.com/version: '1.0.0'\n";
    check(
        t,
        key("metadata.labels.\"app.kubernetes.io/version\""),
        "1.1.0",
        expect![[r#"
        changed=true previous=1.0.0
        metadata:
          labels:
            app.kubernetes.io/version: 1.1.0
            example.com/version: '1.0.0'
    "#]],
    );
    check(
        t,
        key("metadata.labels.example\\.com/version"),
        "1.1.0",
        expect![[r#"
        changed=true previous=1.0.0
        metadata:
          labels:
            app.kubernetes.io/version: 1.0.0
            example.com/version: '1.1.0'
    "#]],
    );
    check(
        t,
        key("metadata.labels.'example.com/version'"),
        "1.1.0",
        expect![[r#"
        changed=true previous=1.0.0
        metadata:
          labels:
            app.kubernetes.io/version: 1.0.0
            example.com/version: '1.1.0'
    "#]],
    );
}

#[test]
fn row13_refusals_say_the_real_reason() {
    check(
        "image:\r  tag: 1.0.0\r",
        key("image.tag"),
        "1.1.0",
        expect![
            "exit 2 at line Some(1): f.yaml:1: the file ends lines with a lone carriage return (CR, old Mac style); convert it to LF or CRLF line endings to let gitops-flow edit it"
        ],
    );
    check(
        "image:\n  tag:\t1.0.0\n",
        key("image.tag"),
        "1.1.0",
        expect![
            "exit 2 at line Some(2): f.yaml:2: a tab follows the `:` of a key; YAML readers such as yaml-rust2 require a space there — replace the tab with a space"
        ],
    );
    check(
        "image:\n  tag:\n  pull: Always\n",
        key("image.tag"),
        "1.1.0",
        expect![[
            r#"exit 2 at line Some(2): f.yaml:2: `image.tag` has no value (an empty `key:` is null); write a placeholder version such as `"0.0.0"` there first"#
        ]],
    );
}

/// The planned edits of `loc` with the values a real `set` of `version` writes.
fn planned(old: &str, loc: &Location, version: &str) -> Vec<(Edit, String)> {
    let parsed = parse_for(old, loc).unwrap();
    locate(&parsed, old, loc)
        .unwrap()
        .iter()
        .filter_map(|h| {
            splice(h, old, "f.yaml", version, "\n")
                .unwrap()
                .map(|(_, v)| (h.edit.clone(), v))
        })
        .collect()
}

/// The check after a splice, run on a hand-made result instead of the real splice.
fn verified(old: &str, kind: LocationKind, version: &str, new: &str) -> String {
    let loc = at("f.yaml", &kind);
    let empty = empty_docs(&parse_for(old, &loc).unwrap());
    match verify::verify(old, new, "f.yaml", &planned(old, &loc, version), &empty, 2) {
        Ok(()) => "ok".into(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_check_after_a_splice_catches_a_sabotaged_result() {
    let old = "image:\n  tag: 1.0.0\n  pull: Always\nreplicas: 2\nname: \"7\"\nlist: [a, b]\n";
    let v = |new: &str| verified(old, key("image.tag"), "1.1.0", new);
    // What `set` writes passes.
    assert_eq!(v(&set_ok(old, &key("image.tag"), "1.1.0")), "ok");
    let refused = |new: &str, why: &str| {
        let got = v(new);
        assert!(got.contains(why), "{new:?}: {got}");
        assert!(
            got.starts_with("f.yaml: the value at line 2 cannot be edited safely"),
            "{got}"
        );
    };
    let more = "the edit would change more than that value (yaml-rust2)";
    // Another value changed too.
    refused(
        "image:\n  tag: 1.1.0\n  pull: Always\nreplicas: 3\nname: \"7\"\nlist: [a, b]\n",
        more,
    );
    // The planned value, but not the planned version; or not changed at all.
    refused(
        "image:\n  tag: 1.1.1\n  pull: Always\nreplicas: 2\nname: \"7\"\nlist: [a, b]\n",
        more,
    );
    refused(old, more);
    // A string became a number; keys swapped; an item or a key added; a list item dropped.
    refused(
        "image:\n  tag: 1.1.0\n  pull: Always\nreplicas: 2\nname: 7\nlist: [a, b]\n",
        more,
    );
    refused(
        "image:\n  pull: Always\n  tag: 1.1.0\nreplicas: 2\nname: \"7\"\nlist: [a, b]\n",
        more,
    );
    refused(
        "image:\n  tag: 1.1.0\n  pull: Always\nreplicas: 2\nname: \"7\"\nlist: [a, b, c]\n",
        more,
    );
    refused(
        "image:\n  tag: 1.1.0\n  pull: Always\n  newTag: 1.1.0\nreplicas: 2\nname: \"7\"\nlist: [a, b]\n",
        more,
    );
    refused(
        "image:\n  tag: 1.1.0\n  pull: Always\nreplicas: 2\nname: \"7\"\nlist: [a]\n",
        more,
    );
    // The value moved under another key; an anchor added; a second document.
    refused(
        "image:\n  tag: 1.0.0\n  pull: Always\n  tog: 1.1.0\nreplicas: 2\nname: \"7\"\nlist: [a, b]\n",
        more,
    );
    refused(
        "image:\n  tag: &t 1.1.0\n  pull: Always\nreplicas: 2\nname: \"7\"\nlist: [a, b]\n",
        more,
    );
    refused(
        "image:\n  tag: 1.1.0\n  pull: Always\nreplicas: 2\nname: \"7\"\nlist: [a, b]\n---\na: 1\n",
        more,
    );
    refused(
        "image:\n  tag: 1.1.0\n  pull: Always\nreplicas: 2\nname: \"7\"\nlist: [a, b\n",
        "the edited file would not parse",
    );

    // Inserted keys: once, in the planned entry, with the planned values.
    let old = "images:\n  - name: app\n    newName: x\n  - name: other\n";
    let kind = LocationKind::KustomizeImage("app".into());
    let v = |new: &str| verified(old, kind.clone(), "1.2.0", new);
    assert_eq!(v(&set_ok(old, &kind, "1.2.0")), "ok");
    for new in [
        "images:\n  - name: app\n    newName: x\n    newTag: 1.2.1\n  - name: other\n",
        "images:\n  - name: app\n    newName: x\n  - name: other\n    newTag: 1.2.0\n",
        "images:\n  - name: app\n    newName: x\n    newTag: 1.2.0\n  - name: other\n    newTag: 1.2.0\n",
        "images:\n  - name: app\n    newName: x\n    newTag: 1.2.0\n    newTag: 1.2.0\n  - name: other\n",
        "images:\n  - name: app\n    newName: x\n  - name: other\n",
    ] {
        let got = v(new);
        assert!(got.contains("cannot be edited safely"), "{new:?}: {got}");
    }
}

#[test]
fn the_second_reading_compares_loaded_data() {
    let keys = second::Keys::new();
    let read = |text: &str, changes: &[second::Change]| second::read(text, &keys, changes).unwrap();
    let change = |route: &str, to: &str| second::Change {
        doc: 0,
        route: KeyPath::parse(route).unwrap().0,
        set: second::Set::Value(to.into()),
    };
    let same = |a: &str, b: &str| read(a, &[])[0].plain == read(b, &[])[0].plain;
    // Data, not text: quoting, flow style, aliases and merge keys do not count; types do.
    assert!(same("a: 'x'\nb: [1, 2]\n", "a: x\nb:\n  - 1\n  - 2\n"));
    assert!(same("base: &b {t: 1}\nuse: *b\n", "base: {t: 1}\nuse: {t: 1}\n"));
    assert!(same(
        "base: &b {t: 1}\nuse: {<<: *b, u: 2}\n",
        "base: {t: 1}\nuse: {t: 1, u: 2}\n"
    ));
    assert!(!same("a: 1\n", "a: '1'\n"));
    assert!(!same("a: [1, 2]\n", "a: [2, 1]\n"));
    assert!(!same("a: {b: 1}\n", "a: {b: 1, c: 2}\n"));
    // The changed digest is the plain digest of the file with the change made.
    let old = read("a: 1\nb: [x, y]\n", &[change("b[1]", "z")]);
    assert_eq!(old[0].applied, [0]);
    assert_eq!(old[0].changed, read("a: 1\nb: [x, z]\n", &[])[0].plain);
    assert_ne!(old[0].changed, read("a: 2\nb: [x, z]\n", &[])[0].plain);
    // A key written twice: the route names the last one.
    let old = read("a: 1\na: 2\n", &[change("a", "3")]);
    assert_eq!(old[0].changed, read("a: 1\na: '3'\n", &[])[0].plain);
    assert_ne!(old[0].changed, read("a: '3'\na: 2\n", &[])[0].plain);
    // A route that is not there applies nowhere.
    assert!(read("a: 1\n", &[change("b", "3")])[0].applied.is_empty());
    // Inserted keys: wherever they land in the mapping.
    let insert = second::Change {
        doc: 0,
        route: KeyPath::parse("m").unwrap().0,
        set: second::Set::Insert(vec![("newTag".into(), "1.0".into())]),
    };
    let old = read("m: {name: a, x: 1}\n", &[insert]);
    assert_eq!(
        old[0].changed,
        read("m: {name: a, newTag: '1.0', x: 1}\n", &[])[0].plain
    );
    assert_ne!(old[0].changed, read("m: {name: a, newTag: 1.0, x: 1}\n", &[])[0].plain);
}

fn nodes(n: &Node) -> usize {
    1 + match n {
        Node::Map { entries, .. } => entries.iter().map(|(_, v)| 1 + nodes(v)).sum(),
        Node::Seq { items, .. } => items.iter().map(nodes).sum(),
        _ => 0,
    }
}

fn kept(p: &Parsed) -> usize {
    p.docs.iter().map(|d| nodes(&d.root)).sum()
}

#[test]
fn locating_keeps_the_way_to_the_value_not_the_whole_file() {
    let mut t = String::from("kind: Values\nimage:\n  tag: 1.0.0\nitems:\n");
    for i in 0..5_000 {
        t.push_str(&format!("  - {{name: item-{i}, flags: [a, b]}}\n  - other: {i}\n"));
    }
    t.push_str("images:\n  - name: app\n    newTag: 1.0.0\n");
    assert!(kept(&Parsed::parse(&t, "f.yaml").unwrap()) > 50_000);
    for kind in [key("image.tag"), LocationKind::KustomizeImage("app".into())] {
        let n = kept(&parse_for(&t, &at("f.yaml", &kind)).unwrap());
        assert!(n < 20, "{kind:?}: {n} nodes kept");
        assert!(set_ok(&t, &kind, "1.1.0").contains("1.1.0"));
    }
    // A path into the list keeps an empty placeholder for each other item.
    let n = kept(&parse_for(&t, &at("f.yaml", &key("items[9001].other"))).unwrap());
    assert!(n < 10_020, "{n} nodes kept");
    assert!(set_ok(&t, &key("items[9001].other"), "1.1.0").contains("  - other: 1.1.0\n"));
}

/// Locating in the kept part of the tree finds what locating in the whole tree finds.
#[test]
fn the_kept_tree_locates_like_the_whole_tree() {
    let cases: &[(&str, LocationKind)] = &[
        // An anchor off the path that a merge key on the path reuses.
        (
            "defaults:\n  list:\n    - &base {tag: 1.0.0}\nimage:\n  <<: *base\n",
            key("image.tag"),
        ),
        (
            "defaults:\n  list:\n    - &base {tag: 1.0.0}\nimage:\n  <<: [*base]\n  tag: 1.0.0\n",
            key("image.tag"),
        ),
        // An anchor on the path reused by an alias off it.
        ("image: &i\n  tag: 1.0.0\nlater:\n  deep: [{x: *i}]\n", key("image.tag")),
        (
            "image:\n  tag: &t 1.0.0\nlater:\n  deep: [{x: [*t]}]\n",
            key("image.tag"),
        ),
        // The path through an alias whose anchor is off the path.
        ("a:\n  b: &x {tag: 1.0.0}\nimage: *x\n", key("image.tag")),
        // Duplicate keys on the path, and off it.
        ("image:\n  tag: 1.0.0\nimage:\n  tag: 2.0.0\n", key("image.tag")),
        ("image:\n  tag: 1.0.0\nother: {a: 1, a: 2}\n", key("image.tag")),
        // A complex key; a list at the root; a path into a list.
        ("? [a, b]\n: 1\nimage: {tag: 1.0.0}\n", key("image.tag")),
        ("- a\n- image: {tag: 1.0.0}\n", key("[1].image.tag")),
        ("x:\n  - 1\n  - &a {tag: 1.0.0}\n  - *a\n", key("x[1].tag")),
        // Documents picked by kind and name; several documents with the path.
        (TWO_RELEASES, key("spec.values.image.tag")),
        (
            "kind: A\nmetadata: {name: a}\n---\nkind: B\nmetadata:\n  name: b\nimage: {tag: 1.0.0}\n",
            key("image.tag"),
        ),
        // Setter comments inside lists and flow collections, and in quoted text.
        (
            "spec:\n  list:\n    - x: 1\n    - image: ghcr.io/a/b:1.0.0 # {\"$imagepolicy\": \"ns:p\"}\n    - [a, 'b # {\"$imagepolicy\": \"ns:p\"}']\n",
            LocationKind::ImagePolicy("ns:p".into()),
        ),
        (
            "a: &a\n  tag: 1.0.0 # {\"$imagepolicy\": \"ns:p:tag\"}\nb: *a\n",
            LocationKind::ImagePolicy("ns:p:tag".into()),
        ),
        (
            "list:\n  - {name: x, tag: 1.0.0} # {\"$imagepolicy\": \"ns:p:tag\"}\n",
            LocationKind::ImagePolicy("ns:p:tag".into()),
        ),
        // Kustomize entries, appVersion.
        (
            "images:\n  - name: app\n    newTag: 1.0.0\n  - name: app\n",
            LocationKind::KustomizeImage("app".into()),
        ),
        (
            "images:\n  - &e {name: app, newTag: 1.0.0}\nother: [*e]\n",
            LocationKind::KustomizeImage("app".into()),
        ),
        ("name: c\nappVersion: 1.0.0\n", LocationKind::ChartAppVersion),
    ];
    for (text, kind) in cases {
        let loc = at("f.yaml", kind);
        let show = |p: &Parsed| match locate(p, text, &loc) {
            Ok(hits) => format!("{:?}", hits.iter().map(|h| (&h.edit, &h.scalar)).collect::<Vec<_>>()),
            Err(e) => e.to_string(),
        };
        let whole = show(&Parsed::parse(text, "f.yaml").unwrap());
        let kept = show(&parse_for(text, &loc).unwrap());
        assert_eq!(kept, whole, "{text}");
    }
}

/// The same on real files (`../shared/corpus`, when it is there): sampled key paths,
/// every setter comment, every kustomize image and `appVersion`.
#[test]
fn the_kept_tree_locates_like_the_whole_tree_on_the_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    let Ok(dirs) = std::fs::read_dir(&root) else {
        // As `tests/support::skip_unless_ci`: CI has the corpus, so a skip there is a failure.
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "precondition missing in CI: no corpus at {}",
            root.display()
        );
        eprintln!("SKIPPED (would fail with CI=true): no corpus at {}", root.display());
        return;
    };
    let mut checked = 0;
    for dir in dirs.flatten().filter(|d| d.path().is_dir()) {
        for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let Ok(text) = std::fs::read_to_string(f.path()) else {
                continue;
            };
            let Ok(whole) = Parsed::parse(&text, "f.yaml") else {
                continue;
            };
            let mut kinds = vec![LocationKind::ChartAppVersion];
            for d in &whole.docs {
                let leaves = d.root.leaves();
                let step = (leaves.len() / 4).max(1);
                for (path, _) in leaves.iter().step_by(step) {
                    if KeyPath::parse(path).is_ok() {
                        kinds.push(key(path));
                    }
                }
                if let Some(Node::Seq { items, .. }) = d.root.get(&Seg::Key("images".into())) {
                    for i in items {
                        if let Some(Node::Scalar(n)) = i.get(&Seg::Key("name".into())) {
                            kinds.push(LocationKind::KustomizeImage(n.value.clone()));
                        }
                    }
                }
            }
            for (_, _, comment) in whole.comments(&text) {
                if let Some(r) = setter_of_comment(comment) {
                    if let Some((policy, _)) = r.rsplit_once(':') {
                        kinds.push(LocationKind::ImagePolicy(policy.to_string()));
                    }
                    kinds.push(LocationKind::ImagePolicy(r));
                }
            }
            for kind in kinds {
                let loc = at("f.yaml", &kind);
                let show = |p: &Parsed| match locate(p, &text, &loc) {
                    Ok(hits) => format!("{:?}", hits.iter().map(|h| (&h.edit, &h.scalar)).collect::<Vec<_>>()),
                    Err(e) => e.to_string(),
                };
                let kept = show(&parse_for(&text, &loc).unwrap());
                assert_eq!(kept, show(&whole), "{} {kind:?}", f.path().display());
                checked += 1;
            }
        }
    }
    eprintln!("corpus: {checked} locations located alike");
}
