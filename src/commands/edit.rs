//! File edits and version reads: the version locations of an environment, read and
//! spliced in place (the manifest module does the YAML).

use super::{Ctx, short};
use crate::error::{Error, Result};
use crate::manifest;
use crate::repo::{FileChange, Oid};

impl Ctx<'_> {
    /// Reads and edits the files of `locations` at `commit` to `version`.
    pub fn edit_locations(
        &self,
        commit: &Oid,
        locations: &[manifest::Location],
        version: &str,
    ) -> Result<(Vec<FileChange>, String)> {
        // (file, text as read, text after the edits so far): each file is read once,
        // and not copied (a large manifest is held once, plus its edited text).
        let mut files: Vec<(String, String, Option<String>)> = Vec::new();
        let mut old = None;
        for loc in locations {
            let i = match files.iter().position(|(f, ..)| *f == loc.file) {
                Some(i) => i,
                None => {
                    files.push((loc.file.clone(), self.read_text(commit, &loc.file)?, None));
                    files.len() - 1
                }
            };
            let (_, before, after) = &files[i];
            let edited = manifest::set(after.as_ref().unwrap_or(before), loc, version)?;
            old.get_or_insert(edited.old_version);
            files[i].2 = Some(edited.text);
        }
        let changes = files
            .into_iter()
            .filter_map(|(path, before, after)| {
                after.filter(|a| *a != before).map(|a| FileChange {
                    path,
                    content: a.into_bytes(),
                })
            })
            .collect();
        Ok((changes, old.unwrap_or_default()))
    }

    pub fn read_text(&self, commit: &Oid, path: &str) -> Result<String> {
        let bytes = self.repo.read_file(commit, path)?.ok_or_else(|| {
            Error::input(format!(
                "{path} not found at {} of {}; check the path in gitops-flow.yaml",
                short(commit),
                self.repo.describe()
            ))
        })?;
        String::from_utf8(bytes).map_err(|_| Error::input(format!("{path} is not UTF-8 text")))
    }

    /// `appVersion` of the service's chart at `commit` (tag and branch mode).
    pub fn chart_version(&self, service: &str, commit: &Oid) -> Result<String> {
        let chart = format!("{}/Chart.yaml", self.config.chart_dir(service)?);
        let text = self.read_text(commit, &chart)?;
        manifest::read(
            &text,
            &manifest::Location::new(chart, manifest::LocationKind::ChartAppVersion),
        )
    }

    /// The version an environment runs, read from the given locations at `commit`.
    pub fn read_version(&self, commit: &Oid, locations: &[manifest::Location]) -> Result<String> {
        let loc = locations
            .first()
            .ok_or_else(|| Error::input("no version location configured"))?;
        let text = self.read_text(commit, &loc.file)?;
        manifest::read(&text, loc)
    }
}
