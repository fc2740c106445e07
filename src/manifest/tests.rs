use super::*;
use crate::config::LocationKind;

fn key(k: &str) -> LocationKind {
    LocationKind::Key(k.to_string())
}

fn set_ok(text: &str, kind: &LocationKind, v: &str) -> String {
    set(text, "f.yaml", kind, v).unwrap_or_else(|e| panic!("{e}")).text
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
    assert_eq!(read(t, "f", &key("image.tag")).unwrap(), "1.2.3");
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
        read(&t, "f", &key("spec.containers[0].image")).unwrap(),
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
    let t = "base: &image\n  repository: app\n  tag: 1.0.0\nother:\n  image: *image\n";
    assert_eq!(
        set_ok(t, &key("base.tag"), "1.1.0"),
        "base: &image\n  repository: app\n  tag: 1.1.0\nother:\n  image: *image\n"
    );
    let e = set("a: &v 1.0.0\nb: *v\n", "f.yaml", &key("b"), "2").unwrap_err();
    assert!(e.to_string().contains("alias"), "{e}");
    assert_eq!(e.exit_code(), 2);
    // An anchored scalar itself is edited in place, anchor kept.
    assert_eq!(
        set_ok("a: &v 1.0.0\nb: *v\n", &key("a"), "2.0.0"),
        "a: &v 2.0.0\nb: *v\n"
    );
}

#[test]
fn block_scalars_missing_keys_and_broken_yaml_are_refused() {
    let e = set("tag: |\n  1.0\n", "f.yaml", &key("tag"), "2").unwrap_err();
    assert!(e.to_string().contains("block scalar"), "{e}");
    assert_eq!(e.place().unwrap().line, Some(1));
    let e = set("image:\n  repo: x\n", "f.yaml", &key("image.tag"), "2").unwrap_err();
    assert!(e.to_string().contains("not found"), "{e}");
    let e = set("a: [1\nb: 2\n", "f.yaml", &key("a"), "2").unwrap_err();
    assert!(e.to_string().contains("not valid YAML"), "{e}");
    assert!(e.place().unwrap().line.is_some());
    let e = set("tag: 1.0\n", "f.yaml", &key("tag"), "1.0\nx: 1").unwrap_err();
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn multi_line_plain_scalars_are_refused() {
    let e = set("tag: 1.0\n  continued\n", "f.yaml", &key("tag"), "2").unwrap_err();
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
    let e = set("tag: !custom 1.0\n", "f.yaml", &key("tag"), "1.1").unwrap_err();
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
    let again = set(&out, "f", &LocationKind::ChartAppVersion, "1.1.0").unwrap();
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
        read(t, "f", &LocationKind::ImagePolicy("flux-system:app".into())).unwrap(),
        "1.0.0"
    );
    let e = set(t, "f.yaml", &LocationKind::ImagePolicy("nope:x".into()), "1").unwrap_err();
    assert!(e.to_string().contains("marker"), "{e}");
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
    let e = set(t, "k.yaml", &LocationKind::KustomizeImage("api".into()), "1.1.0").unwrap_err();
    assert!(e.to_string().contains("pins a digest"), "{e}");
    assert_eq!(e.exit_code(), 2);
    let v = format!("1.1.0@sha256:{d}");
    let out = set_ok(t, &LocationKind::KustomizeImage("api".into()), &v);
    assert_eq!(
        out,
        t.replace("1.0.0", "1.1.0")
            .replace("sha256:0000", &format!("sha256:{d}"))
    );
    assert_eq!(read(&out, "k", &LocationKind::KustomizeImage("api".into())).unwrap(), v);
    let out2 = set_ok(t, &LocationKind::ImagePolicy("ns:api".into()), &v);
    assert_eq!(out2, out);
    assert_eq!(
        read(&out2, "k", &LocationKind::ImagePolicy("ns:api".into())).unwrap(),
        v
    );
    // A version with a digest in a plain version key stays one value, read back whole.
    assert_eq!(
        read(&set_ok("tag: 1.0\n", &key("tag"), &v), "f", &key("tag")).unwrap(),
        v
    );
}
