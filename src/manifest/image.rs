//! Image references (`registry/app:tag@sha256:...`), Flux setter markers and quoting.

/// An image reference split into name, tag and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// True when `value` is an image reference rather than a bare version:
    /// it has a `/`, a `:` tag separator or an `@` digest.
    pub fn looks_like_image(value: &str) -> bool {
        // `1.2.3@sha256:...` is a version with a digest; `repo/app`, `app:1.2` are images.
        let name_and_tag = value.split('@').next().unwrap_or(value);
        !value.is_empty()
            && !value.contains(char::is_whitespace)
            && !value.contains("{{")
            && (name_and_tag.contains('/') || name_and_tag.contains(':'))
    }

    pub fn parse(value: &str) -> ImageRef {
        let (rest, digest) = match value.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (value, None),
        };
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        match rest[slash..].rfind(':') {
            Some(i) => ImageRef {
                name: rest[..slash + i].to_string(),
                tag: Some(rest[slash + i + 1..].to_string()),
                digest,
            },
            None => ImageRef {
                name: rest.to_string(),
                tag: None,
                digest,
            },
        }
    }

    /// The version this reference carries: `tag`, `tag@digest`, or `@digest`.
    pub fn version(&self) -> String {
        match (&self.tag, &self.digest) {
            (Some(t), Some(d)) => format!("{t}@{d}"),
            (Some(t), None) => t.clone(),
            (None, Some(d)) => format!("@{d}"),
            (None, None) => String::new(),
        }
    }

    /// The same image at another version (tag, and digest when the version has one).
    pub fn with_version(&self, version: &str) -> String {
        format!("{}:{version}", self.name)
    }
}

/// Plain words that a YAML 1.1 reader (Helm's go-yaml v2) or a YAML 1.2 reader (go-yaml
/// v3, kyaml, yaml-rust2) resolves to a boolean, null, a special float or the merge key.
/// Ported from go-yaml v2 `resolve.go` (`resolveMapList`), which is a superset of v3's.
const RESERVED_WORDS: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "n", "N", "no", "No", "NO", "false",
    "False", "FALSE", "off", "Off", "OFF", "~", "null", "Null", "NULL", ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF",
    "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", "<<",
];

/// True when `value`, written plain, would not read back as the same string in every
/// reader that matters: go-yaml v2 (YAML 1.1, Helm), go-yaml v3 / kyaml (YAML 1.2) and
/// yaml-rust2. Quoting a value that did not need it is harmless, so every rule errs
/// towards quoting.
///
/// The number and timestamp rules follow go-yaml v2/v3 `resolve()`: a value starting
/// with a digit or sign is tried as a timestamp (`2006-1-2...`), then as an integer
/// after removing every `_` (`strconv.ParseInt(plain, 0, 64)`: `0x`, `0o`, `0b`
/// prefixes and leading-zero octals), then as a float (`yamlStyleFloat`); one starting
/// with `.` is tried as a float.
pub fn needs_quotes(value: &str) -> bool {
    if value.is_empty()
        || RESERVED_WORDS.contains(&value)
        || RESERVED_WORDS.contains(&value.to_ascii_lowercase().as_str())
    {
        return true;
    }
    let first = value.as_bytes()[0];
    if (first.is_ascii_digit() || first == b'+' || first == b'-' || first == b'.') && resolves_as_number(value) {
        return true;
    }
    // Anything else the YAML syntax itself would take apart (`- x`, `a: b`, `#x`, `@x`,
    // `[x]`...) or yaml-rust2 would type: ask yaml-rust2.
    let doc = format!("k: {value}\n");
    match yaml_rust2::YamlLoader::load_from_str(&doc) {
        Ok(docs) => docs
            .first()
            .and_then(|d| d["k"].as_str().map(|s| s != value))
            .unwrap_or(true),
        Err(_) => true,
    }
}

/// go-yaml's timestamp, integer and float resolution of a plain scalar.
fn resolves_as_number(value: &str) -> bool {
    // Timestamps: four digits then `-` (go-yaml `parseTimestamp`); any such prefix is
    // quoted, whether or not `time.Parse` would accept the rest.
    let b = value.as_bytes();
    if b.len() > 4 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
        return true;
    }
    let plain: String = value.chars().filter(|c| *c != '_').collect();
    let unsigned = plain.strip_prefix(['+', '-']).unwrap_or(&plain);
    let all = |s: &str, f: fn(&u8) -> bool| !s.is_empty() && s.as_bytes().iter().all(f);
    let lower = unsigned.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        all(h, u8::is_ascii_hexdigit)
    } else if let Some(o) = lower.strip_prefix("0o") {
        all(o, |c| (b'0'..=b'7').contains(c))
    } else if let Some(bin) = lower.strip_prefix("0b") {
        all(bin, |c| *c == b'0' || *c == b'1')
    } else {
        all(unsigned, u8::is_ascii_digit)
    };
    int || yaml_style_float(&plain)
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$` (go-yaml `yamlStyleFloat`).
fn yaml_style_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mantissa_ok = if let Some(frac) = mantissa.strip_prefix('.') {
        !frac.is_empty() && digits(frac) == frac.len()
    } else {
        let int = digits(mantissa);
        int > 0
            && (int == mantissa.len() || {
                let frac = &mantissa[int..];
                frac.starts_with('.') && digits(&frac[1..]) == frac.len() - 1
            })
    };
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e) == e.len()
    });
    mantissa_ok && exp_ok
}

/// The Flux setter named by a comment's text, as kyaml's `FieldMeta.Read` decides it:
/// the comment without its leading `#`s must be a JSON object of strings with a
/// non-empty `$imagepolicy` (`processShortHand` in kustomize `kyaml/fieldmeta`).
/// Returns the policy reference (`ns:name` or `ns:name:field`).
pub fn setter_of_comment(comment: &str) -> Option<String> {
    let json = comment.trim_start_matches('#');
    let map: std::collections::HashMap<String, String> = serde_json::from_str(json).ok()?;
    map.get("$imagepolicy").filter(|v| !v.is_empty()).cloned()
}

/// Which field of `policy` a setter reference names: `Some(None)` for the whole image,
/// `Some(Some("tag"))` for `ns:name:tag`; `None` when it is another policy.
pub fn policy_field(reference: &str, policy: &str) -> Option<Option<String>> {
    if reference == policy {
        Some(None)
    } else {
        reference
            .strip_prefix(policy)
            .and_then(|r| r.strip_prefix(':'))
            .map(|f| Some(f.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_refs() {
        let r = ImageRef::parse("ghcr.io:5000/acme/app:1.2.3@sha256:abc");
        assert_eq!(r.name, "ghcr.io:5000/acme/app");
        assert_eq!(r.tag.as_deref(), Some("1.2.3"));
        assert_eq!(r.digest.as_deref(), Some("sha256:abc"));
        assert_eq!(r.with_version("2.0"), "ghcr.io:5000/acme/app:2.0");
        let r = ImageRef::parse("localhost:5000/app");
        assert_eq!(r.name, "localhost:5000/app");
        assert_eq!(r.tag, None);
        assert!(!ImageRef::looks_like_image("1.2.3"));
        assert!(ImageRef::looks_like_image("nginx:1.25"));
    }

    #[test]
    fn quoting() {
        for q in [
            "1.10",
            "1",
            "on",
            "No",
            "1e3",
            "0x1F",
            ".5",
            "null",
            "true",
            "0b101",
            "1_000",
            "2024_01_15",
            "0x_1",
            "0o17",
            "y",
            "n",
            "Y",
            "N",
            "2024-01-15",
            "+1",
            "-1.5",
            "017",
            "08",
            "1.",
            ".inf",
            "<<",
            "-",
            "~",
        ] {
            assert!(needs_quotes(q), "{q}");
        }
        for p in [
            "1.2.3",
            "v1.10",
            "1.0.0-rc.1",
            "latest",
            "sha-abc123",
            "2024.01.15",
            "1e",
            "0x",
            "0b2",
            "1_a",
        ] {
            assert!(!needs_quotes(p), "{p}");
        }
    }

    #[test]
    fn setter_comments_are_exactly_the_setter_object() {
        assert_eq!(
            setter_of_comment(" {\"$imagepolicy\": \"ns:app\"}").as_deref(),
            Some("ns:app")
        );
        assert_eq!(
            setter_of_comment("{\"$imagepolicy\":\"ns:app:tag\"} ").as_deref(),
            Some("ns:app:tag")
        );
        assert_eq!(setter_of_comment(" pinned, was {\"$imagepolicy\": \"ns:app\"}"), None);
        assert_eq!(setter_of_comment(" image: x # {\"$imagepolicy\": \"ns:app\"}"), None);
        assert_eq!(setter_of_comment(" {\"$imagepolicy\": 1}"), None);
        assert_eq!(policy_field("ns:app:tag", "ns:app"), Some(Some("tag".into())));
        assert_eq!(policy_field("ns:app", "ns:app"), Some(None));
        assert_eq!(policy_field("ns:apple", "ns:app"), None);
    }
}
