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

/// YAML 1.1 words that some readers (Helm's go-yaml) take as booleans or null.
const YAML11_WORDS: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"];

/// True when `value`, written plain, would not read back as the same string
/// under YAML 1.2 or YAML 1.1 (`1.10` is a float, `on` a boolean, `1e3` a number).
pub fn needs_quotes(value: &str) -> bool {
    if value.is_empty() || YAML11_WORDS.contains(&value.to_ascii_lowercase().as_str()) {
        return true;
    }
    let doc = format!("k: {value}\n");
    match yaml_rust2::YamlLoader::load_from_str(&doc) {
        Ok(docs) => docs
            .first()
            .and_then(|d| d["k"].as_str().map(|s| s != value))
            .unwrap_or(true),
        Err(_) => true,
    }
}

/// The Flux setter markers of `policy` in `text`: (1-based line, field) where field is
/// `None` (whole image), `tag`, `name` or `digest`.
pub fn policy_markers(text: &str, policy: &str) -> Vec<(usize, Option<String>)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(hash) = line.find('#') else { continue };
        let comment = &line[hash + 1..];
        let Some(k) = comment.find("\"$imagepolicy\"") else {
            continue;
        };
        let after = comment[k + "\"$imagepolicy\"".len()..].trim_start();
        let Some(after) = after.strip_prefix(':') else {
            continue;
        };
        let after = after.trim_start();
        let Some(after) = after.strip_prefix('"') else {
            continue;
        };
        let Some(end) = after.find('"') else { continue };
        let value = &after[..end];
        if value == policy {
            out.push((i + 1, None));
        } else if let Some(field) = value.strip_prefix(policy).and_then(|r| r.strip_prefix(':')) {
            out.push((i + 1, Some(field.to_string())));
        }
    }
    out
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
        for q in ["1.10", "1", "on", "No", "1e3", "0x1F", ".5", "null", "true"] {
            assert!(needs_quotes(q), "{q}");
        }
        for p in ["1.2.3", "v1.10", "1.0.0-rc.1", "latest", "sha-abc123"] {
            assert!(!needs_quotes(p), "{p}");
        }
    }

    #[test]
    fn markers() {
        let t = "a: x # {\"$imagepolicy\": \"flux:app\"}\nb: y # {\"$imagepolicy\": \"flux:app:tag\"}\nc: z # {\"$imagepolicy\": \"flux:other\"}\n";
        assert_eq!(policy_markers(t, "flux:app"), vec![(1, None), (2, Some("tag".into()))]);
    }
}
