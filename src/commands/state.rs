//! What an environment runs: one answer, read once per (service, environment), used
//! by `promote`, `rollback`, `status` and `report` alike.
//!
//! * tag — the tag's commit, the chart's `appVersion` there, the rollback tag.
//! * file — the version at the main branch's head; the revision is the last commit on
//!   the main branch (first-parent) that changed the value at any of the environment's
//!   version locations; the rollback point is the change before it.
//! * branch — the branch head and the version in its files there.

use crate::config::Environment;
use crate::error::Result;
use crate::manifest::{self, Location};
use crate::repo::{HistoryEntry, Oid, RefTarget};

use super::Ctx;

/// Where the state was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The tag `{service}-{env}` and its rollback tag.
    Tag { tag: String, rollback_tag: String },
    /// Version files on the main branch (the first one holds the version read).
    File { files: Vec<String> },
    /// The environment's own branch.
    Branch { branch: String },
}

/// A revision an environment can go back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackPoint {
    pub revision: Oid,
    /// The version there, where known without another read (file track).
    pub version: Option<String>,
}

/// How much of the state to read: each level costs more reads on the GitHub backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// The revision only: the version is not read (`version` is `Ok(None)`), and a
    /// file-tracked environment's history is walked.
    Revision,
    /// The version, with the revision and rollback point where refs give them (tag,
    /// branch); a file-tracked environment's history is not walked (`revision` and
    /// `rollback` are `None`).
    Version,
    /// Everything, a file-tracked environment's history included.
    Full,
}

/// What runs in an environment for one service.
#[derive(Debug)]
pub struct EnvState {
    pub source: Source,
    /// `Ok(None)`: nothing deployed there (no tag, no branch) or not read at this
    /// [`Depth`]; `Err`: the version could not be read (a broken chart or manifest).
    pub version: Result<Option<String>>,
    /// The commit the environment runs.
    pub revision: Option<Oid>,
    /// Where a rollback goes: the rollback tag (tag track), the change before
    /// [`EnvState::changed_by`] (file track).
    pub rollback: Option<RollbackPoint>,
    /// File track, history read: the change on the main branch that set what runs.
    pub changed_by: Option<HistoryEntry>,
}

impl EnvState {
    /// Reads what `env` runs for `service`.
    pub fn read(ctx: &Ctx<'_>, env: &Environment, service: &str, main_head: &Oid, depth: Depth) -> Result<EnvState> {
        super::tracks::of(env).state(ctx, env, service, main_head, depth)
    }

    /// A tag-tracked environment whose tags were already resolved.
    pub fn of_tag(
        ctx: &Ctx<'_>,
        service: &str,
        tag: String,
        rollback_tag: String,
        at: Option<&RefTarget>,
        rollback_at: Option<&RefTarget>,
        depth: Depth,
    ) -> EnvState {
        let version = match at {
            Some(t) if depth != Depth::Revision => ctx.chart_version(service, &t.commit).map(Some),
            _ => Ok(None),
        };
        EnvState {
            source: Source::Tag { tag, rollback_tag },
            version,
            revision: at.map(|t| t.commit.clone()),
            rollback: rollback_at.map(|r| RollbackPoint {
                revision: r.commit.clone(),
                version: None,
            }),
            changed_by: None,
        }
    }

    /// A branch-tracked environment whose branch head was already resolved.
    pub fn of_branch(
        ctx: &Ctx<'_>,
        env: &Environment,
        service: &str,
        head: Option<Oid>,
        depth: Depth,
    ) -> Result<EnvState> {
        let version = match &head {
            Some(h) if depth != Depth::Revision => {
                let locs = ctx.config.locations(env, service)?;
                ctx.read_version(h, &locs).map(Some)
            }
            _ => Ok(None),
        };
        Ok(EnvState {
            source: Source::Branch {
                branch: env.branch.clone().unwrap_or_default(),
            },
            version,
            revision: head,
            rollback: None,
            changed_by: None,
        })
    }

    pub(crate) fn of_file(
        ctx: &Ctx<'_>,
        env: &Environment,
        service: &str,
        main_head: &Oid,
        depth: Depth,
    ) -> Result<EnvState> {
        if depth == Depth::Version {
            let walk = FileWalk::new(ctx.config.locations(env, service)?);
            let mut state = walk.state();
            state.version = ctx.read_version(main_head, &walk.locs).map(Some);
            return Ok(state);
        }
        let mut states = EnvState::of_files(ctx, &[(env, service)], main_head)?;
        Ok(states.pop().expect("one state a cell"))
    }

    /// The full states of several file-tracked (environment, service) cells, their
    /// files' histories walked together (one query a page for many files on the
    /// GitHub backend, instead of one walk a cell).
    pub fn of_files(ctx: &Ctx<'_>, cells: &[(&Environment, &str)], main_head: &Oid) -> Result<Vec<EnvState>> {
        let walks: Vec<FileWalk> = cells
            .iter()
            .map(|(env, service)| Ok(FileWalk::new(ctx.config.locations(env, service)?)))
            .collect::<Result<_>>()?;
        // Every cell's files, in order: (cell, file index) of each path walked.
        let mut paths: Vec<String> = Vec::new();
        let mut owner: Vec<(usize, usize)> = Vec::new();
        for (c, w) in walks.iter().enumerate() {
            for (n, f) in w.files.iter().enumerate() {
                paths.push(f.clone());
                owner.push((c, n));
            }
        }
        // Each walk goes back to the first change of its file's first location's
        // value (the first file's first location is the version's).
        let mut now: Vec<Option<Option<String>>> = vec![None; paths.len()];
        let histories = ctx.repo.file_histories(main_head, &paths, 100, &mut |i, h| {
            let (c, n) = owner[i];
            let v = value_at(h, walks[c].first_in(n));
            match &now[i] {
                None => {
                    now[i] = Some(v);
                    false
                }
                Some(now) => v.is_some() && v != *now,
            }
        })?;
        let mut histories = histories.into_iter();
        walks
            .into_iter()
            .map(|w| {
                let mine: Vec<Vec<HistoryEntry>> = histories.by_ref().take(w.files.len()).collect();
                w.read(ctx, main_head, mine)
            })
            .collect()
    }
}

/// A file-tracked cell's version locations and the files that hold them.
struct FileWalk {
    locs: Vec<Location>,
    files: Vec<String>,
}

impl FileWalk {
    fn new(locs: Vec<Location>) -> FileWalk {
        let mut files: Vec<String> = Vec::new();
        for l in &locs {
            if !files.contains(&l.file) {
                files.push(l.file.clone());
            }
        }
        FileWalk { locs, files }
    }

    /// The state before anything is read.
    fn state(&self) -> EnvState {
        EnvState {
            source: Source::File {
                files: self.files.clone(),
            },
            version: Ok(None),
            revision: None,
            rollback: None,
            changed_by: None,
        }
    }

    /// The locations in the `n`th file.
    fn in_file(&self, n: usize) -> Vec<&Location> {
        self.locs.iter().filter(|l| l.file == self.files[n]).collect()
    }

    /// The first location in the `n`th file.
    fn first_in(&self, n: usize) -> &Location {
        self.in_file(n)[0]
    }

    /// The state from the histories of the files (in order), newest first.
    fn read(self, ctx: &Ctx<'_>, main_head: &Oid, histories: Vec<Vec<HistoryEntry>>) -> Result<EnvState> {
        let mut state = self.state();
        let mut last_changes: Vec<HistoryEntry> = Vec::new();
        for (n, history) in histories.iter().enumerate() {
            let in_file = self.in_file(n);
            // The values of this file's locations after each change, newest first.
            let values: Vec<Vec<Option<String>>> = history
                .iter()
                .map(|h| in_file.iter().map(|l| value_at(h, l)).collect())
                .collect();
            // The newest change of any of them.
            if let Some(i) = (0..history.len()).find(|&i| values.get(i + 1).is_none_or(|older| *older != values[i])) {
                last_changes.push(history[i].clone());
            }
            if n == 0 {
                let now = values.first().and_then(|v| v[0].clone());
                state.version = match (&now, history.first().and_then(|h| h.content.as_ref())) {
                    (Some(v), _) => Ok(Some(v.clone())),
                    // Unreadable there: the error `read_version` gives.
                    _ => ctx.read_version(main_head, &self.locs).map(Some),
                };
                state.rollback = history
                    .iter()
                    .zip(&values)
                    .find_map(|(h, v)| {
                        v[0].as_ref()
                            .filter(|v| now.as_ref() != Some(*v))
                            .map(|v| (v.clone(), h.commit.clone()))
                    })
                    .map(|(version, revision)| RollbackPoint {
                        revision,
                        version: Some(version),
                    });
            }
        }
        // The newest of the files' last changes (all on the first-parent chain).
        let mut newest: Option<HistoryEntry> = None;
        for c in last_changes {
            newest = match newest {
                Some(b) if b.commit == c.commit || !ctx.repo.is_ancestor(&b.commit, &c.commit)? => Some(b),
                _ => Some(c),
            };
        }
        state.revision = Some(
            newest
                .as_ref()
                .map(|h| h.commit.clone())
                .unwrap_or_else(|| main_head.clone()),
        );
        state.changed_by = newest;
        Ok(state)
    }
}

/// The value at `loc` after the change `h`, when readable.
fn value_at(h: &HistoryEntry, loc: &Location) -> Option<String> {
    let text = std::str::from_utf8(h.content.as_deref()?).ok()?;
    manifest::read(text, loc).ok()
}
