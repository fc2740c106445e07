//! The GitHub backend (API writes).

use std::collections::HashMap;

use super::local::LocalRepo;
use crate::cli::Inputs;
use crate::error::{Error, Result};

pub struct GitHubRepo;

impl GitHubRepo {
    pub fn open(_inputs: &Inputs, _env: &HashMap<String, String>, _now: i64) -> Result<LocalRepo> {
        Err(Error::input("github backend: under construction"))
    }
}
