//! The editor's vocabulary: where a version lives in a file.

/// What kind of place holds the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationKind {
    /// A key path into a mapping (`image.tag`, `spec.containers[0].image`).
    Key { path: String, form: ValueForm },
    /// Every Flux setter comment of this policy (`ns:name`).
    ImagePolicy(String),
    /// `images[name=...]` of a kustomization: `newTag` and `digest`.
    KustomizeImage(String),
    /// `appVersion` of a Chart.yaml.
    ChartAppVersion,
}

impl LocationKind {
    /// A key path whose value form is decided from the value where that is unambiguous.
    pub fn key(path: impl Into<String>) -> LocationKind {
        LocationKind::Key {
            path: path.into(),
            form: ValueForm::Auto,
        }
    }
}

/// What the value at a `key:` location is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueForm {
    /// A whole image reference (`value: image`) when it has a registry path or tag
    /// (`ghcr.io/acme/app:1.0`), a version otherwise; a bare name under a key called
    /// `image` is refused as ambiguous.
    #[default]
    Auto,
    /// The whole value is the version (`value: version`).
    Version,
    /// The value is an image reference whose tag (and digest) carry the version
    /// (`value: image`): `nginx` becomes `nginx:1.25.3`.
    Image,
}

/// Picks one document of a multi-document file by its `kind` and `metadata.name`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DocSelector {
    pub kind: Option<String>,
    pub name: Option<String>,
}

impl std::fmt::Display for DocSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.kind, &self.name) {
            (Some(k), Some(n)) => write!(f, "{k}/{n}"),
            (Some(k), None) => write!(f, "kind {k}"),
            (None, Some(n)) => write!(f, "name {n}"),
            (None, None) => write!(f, "any document"),
        }
    }
}

/// One concrete place that holds a service's version in one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub kind: LocationKind,
    /// In a file of several documents: the one to edit.
    pub document: Option<DocSelector>,
}

impl Location {
    pub fn new(file: impl Into<String>, kind: LocationKind) -> Location {
        Location {
            file: file.into(),
            kind,
            document: None,
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            LocationKind::Key { path, .. } => write!(f, "{} `{path}`", self.file),
            LocationKind::ImagePolicy(p) => write!(f, "{} $imagepolicy `{p}`", self.file),
            LocationKind::KustomizeImage(i) => write!(f, "{} images[name={i}].newTag", self.file),
            LocationKind::ChartAppVersion => write!(f, "{} `appVersion`", self.file),
        }?;
        if let Some(d) = &self.document {
            write!(f, " in {d}")?;
        }
        Ok(())
    }
}
